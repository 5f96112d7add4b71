/*
 * page.c: encoding and validation of meta pages, tree records and pages.
 * The byte layout is documented at the top of page.h.
 */
#include "page.h"

#include "checksum.h"
#include "mapkv.h"

void pg_tree_encode(uint8_t *out, const tree_rec *t)
{
	pg_st32(out + 0, t->root);
	pg_st32(out + 4, t->depth);
	pg_st64(out + 8, t->entries);
	pg_st64(out + 16, t->branch_pages);
	pg_st64(out + 24, t->leaf_pages);
	pg_st64(out + 32, t->overflow_pages);
	pg_st32(out + 40, t->flags);
	pg_st32(out + 44, 0);
}

void pg_tree_decode(const uint8_t *in, tree_rec *t)
{
	t->root = pg_ld32(in + 0);
	t->depth = pg_ld32(in + 4);
	t->entries = pg_ld64(in + 8);
	t->branch_pages = pg_ld64(in + 16);
	t->leaf_pages = pg_ld64(in + 24);
	t->overflow_pages = pg_ld64(in + 32);
	t->flags = pg_ld32(in + 40);
}

static uint32_t meta_crc(const uint8_t *in, uint32_t nruns)
{
	uint32_t c = ck_crc32c(0, in, MK_META_SIZE);
	return ck_crc32c(c, in + MK_META_RUNS, 8u * nruns);
}

void pg_meta_encode(uint8_t *out, unsigned psize, const mk_meta *m,
		    const uint32_t *runs)
{
	memset(out, 0, psize);
	pg_st32(out + 0, MK_MAGIC);
	pg_st32(out + 4, m->version);
	pg_st32(out + 8, m->page_size);
	pg_st32(out + 12, m->flags);
	pg_st64(out + 16, m->txnid);
	pg_st64(out + 24, m->last_pgno);
	for (unsigned i = 0; i < MK_NUM_TREES; i++)
		pg_tree_encode(out + 32 + i * MK_TREE_REC_SIZE, &m->trees[i]);
	pg_st32(out + 176, m->nruns);
	pg_st32(out + 180, m->data_crc);
	for (uint32_t i = 0; i < 2 * m->nruns; i++)
		pg_st32(out + MK_META_RUNS + 4 * i, runs[i]);
	pg_st32(out + MK_META_SIZE, meta_crc(out, m->nruns));
}

static int valid_page_size(uint32_t ps)
{
	return ps >= MK_MIN_PAGE && ps <= MK_MAX_PAGE && (ps & (ps - 1)) == 0;
}

/* A tree record is plausible when its depth is bounded and it is empty
 * exactly when its root is 0. Page numbers are checked against the file
 * by the caller, who knows last_pgno. */
static int valid_tree(const tree_rec *t, uint64_t last_pgno)
{
	if (t->depth > 32)
		return 0;
	if ((t->root == 0) != (t->depth == 0))
		return 0;
	if (t->root != 0 && (t->root < MK_NUM_META || t->root >= last_pgno))
		return 0;
	return 1;
}

int pg_meta_decode(const uint8_t *in, size_t len, mk_meta *m)
{
	if (len < MK_META_RUNS)
		return MAPKV_CORRUPT;
	if (pg_ld32(in) != MK_MAGIC)
		return MAPKV_CORRUPT;
	uint32_t nruns = pg_ld32(in + 176);
	if (nruns > (len - MK_META_RUNS) / 8)
		return MAPKV_CORRUPT;
	if (pg_ld32(in + MK_META_SIZE) != meta_crc(in, nruns))
		return MAPKV_CORRUPT;
	m->magic = MK_MAGIC;
	m->version = pg_ld32(in + 4);
	/* The version is checked after the checksum: a damaged page of our
	 * own version must not pass for a file of another one. */
	if (m->version != MK_FORMAT_VERSION)
		return MAPKV_VERSION_MISMATCH;
	m->page_size = pg_ld32(in + 8);
	m->flags = pg_ld32(in + 12);
	m->txnid = pg_ld64(in + 16);
	m->last_pgno = pg_ld64(in + 24);
	for (unsigned i = 0; i < MK_NUM_TREES; i++)
		pg_tree_decode(in + 32 + i * MK_TREE_REC_SIZE, &m->trees[i]);
	m->nruns = nruns;
	m->data_crc = pg_ld32(in + 180);
	if (!valid_page_size(m->page_size) || m->flags != 0 ||
	    nruns > pg_meta_max_runs(m->page_size))
		return MAPKV_CORRUPT;
	for (uint32_t i = 0; i < nruns; i++) {
		pgno_t p;
		uint32_t n;
		pg_meta_run(in, i, &p, &n);
		if (p < MK_NUM_META || n == 0 || (uint64_t)p + n > m->last_pgno)
			return MAPKV_CORRUPT;
	}
	if (m->last_pgno < MK_NUM_META || m->last_pgno > 0xffffffffull)
		return MAPKV_CORRUPT;
	for (unsigned i = 0; i < MK_NUM_TREES; i++)
		if (!valid_tree(&m->trees[i], m->last_pgno))
			return MAPKV_CORRUPT;
	return 0;
}

void pg_init(page *p, pgno_t pgno, unsigned flags, unsigned psize)
{
	pg_st32(p, pgno);
	pg_st16(p + 4, (uint16_t)flags);
	pg_st16(p + 6, 0);
	pg_st16(p + 8, MK_PAGE_HDR);
	pg_st16(p + 10, (uint16_t)psize);
	pg_st32(p + 12, 0);
}

int pg_check(const page *p, unsigned psize)
{
	unsigned flags = pg_flags(p), n = pg_nkeys(p);
	int leaf = (flags & MK_P_LEAF) != 0;
	if (flags != MK_P_LEAF && flags != MK_P_BRANCH)
		return MAPKV_CORRUPT;
	if (pg_lower(p) != MK_PAGE_HDR + 2 * n || pg_lower(p) > pg_upper(p) ||
	    pg_upper(p) > psize)
		return MAPKV_CORRUPT;
	const uint8_t *pk = NULL;
	unsigned pks = 0;
	for (unsigned i = 0; i < n; i++) {
		unsigned off = pg_slot(p, i);
		unsigned hdr = leaf ? MK_LEAF_HDR : MK_BRANCH_HDR;
		if (off < pg_upper(p) || off + hdr > psize)
			return MAPKV_CORRUPT;
		const uint8_t *nd = p + off;
		unsigned sz = leaf ? nd_leaf_size(nd) : nd_branch_size(nd);
		if (leaf && !(nd_flags(nd) & MK_N_BIG) &&
		    nd_leaf_vsize(nd) > psize)
			return MAPKV_CORRUPT;
		if (off + sz > psize)
			return MAPKV_CORRUPT;
		const uint8_t *k = leaf ? nd_leaf_key(nd) : nd_branch_key(nd);
		unsigned ks = leaf ? nd_leaf_ksize(nd) : nd_branch_ksize(nd);
		if (!leaf && i == 0) {
			if (ks != 0)
				return MAPKV_CORRUPT;
			continue;
		}
		if (ks == 0 || ks > MAPKV_MAX_KEY_SIZE)
			return MAPKV_CORRUPT;
		if (pk && mk_cmp(pk, pks, k, ks) >= 0)
			return MAPKV_CORRUPT;
		pk = k;
		pks = ks;
	}
	return 0;
}
