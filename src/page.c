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

/* Index of the lowest set bit of @b (b != 0). */
static inline unsigned low_bit(uint64_t b)
{
#if defined(__GNUC__)
	return (unsigned)__builtin_ctzll(b);
#else
	unsigned i = 0;
	while (!(b & 1)) {
		b >>= 1;
		i++;
	}
	return i;
#endif
}

static inline unsigned node_size(const uint8_t *nd, int leaf)
{
	return leaf ? nd_leaf_size(nd) : nd_branch_size(nd);
}

/* pg_check of a leaf (@leaf = 1) or branch page, compiled for each: the
 * check runs on every page a writer copies, so it is kept lean. */
#if defined(__GNUC__)
#define CHECK_INLINE inline __attribute__((always_inline))
#else
#define CHECK_INLINE inline
#endif
static CHECK_INLINE int check_page(const page *p, unsigned psize,
				   const int leaf)
{
	unsigned n = pg_nkeys(p);
	unsigned upper = pg_upper(p);
	if (pg_lower(p) != MK_PAGE_HDR + 2 * n || pg_lower(p) > upper ||
	    upper > psize || psize > MK_MAX_PAGE || n > pg_max_nodes(psize))
		return MAPKV_CORRUPT;
	/* Nodes must not share bytes: a writer moves each by its recorded
	 * size, and split and merge count on the nodes' bytes fitting the
	 * heap. The start of each node is marked in a bit per heap byte
	 * (offsets from upper) and its end kept. */
	uint64_t starts[MK_MAX_PAGE / 64];
	uint16_t ends[MK_MAX_PAGE / (2 + MK_BRANCH_HDR)];
	unsigned heap = psize - upper, words = heap / 64 + 1, sum = 0;
	memset(starts, 0, words * sizeof(starts[0]));
	const uint8_t *pk = NULL;
	unsigned pks = 0;
	for (unsigned i = 0; i < n; i++) {
		unsigned off = pg_slot(p, i);
		unsigned hdr = leaf ? MK_LEAF_HDR : MK_BRANCH_HDR;
		if (off < upper || off + hdr > psize)
			return MAPKV_CORRUPT;
		const uint8_t *nd = p + off;
		if (leaf && (nd_flags(nd) & ~MK_N_BIG))
			return MAPKV_CORRUPT;
		if (leaf && !(nd_flags(nd) & MK_N_BIG) &&
		    nd_leaf_vsize(nd) > psize)
			return MAPKV_CORRUPT;
		unsigned sz = node_size(nd, leaf), x = off - upper;
		if (off + sz > psize)
			return MAPKV_CORRUPT;
		starts[x / 64] |= 1ull << (x % 64);
		ends[i] = (uint16_t)(x + sz);
		sum += sz;
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
	if (n == 0)
		return 0;
	if (sum > heap)
		return MAPKV_CORRUPT;
	if (sum == heap) {
		/* Packed, as every page mapkv writes. Then the nodes tile the
		 * heap exactly if its first byte starts a node and every
		 * node's end (below P) starts another: an uncovered byte would
		 * follow the end of some node. Covering the heap with as many
		 * bytes as it has, they share none. */
		if (!(starts[0] & 1))
			return MAPKV_CORRUPT;
		starts[heap / 64] |= 1ull << (heap % 64); /* P ends one */
		for (unsigned i = 0; i < n; i++)
			if (!(starts[ends[i] / 64] >> (ends[i] % 64) & 1))
				return MAPKV_CORRUPT;
		return 0;
	}
	/* A heap with gaps: no two nodes may start at one byte, and visiting
	 * the starts in address order, each node must end before the next
	 * begins. */
	unsigned nstarts = 0, end = 0;
	for (unsigned w = 0; w < words; w++) {
		for (uint64_t b = starts[w]; b; b &= b - 1) {
			unsigned x = w * 64 + low_bit(b);
			if (x < end)
				return MAPKV_CORRUPT;
			end = x + node_size(p + upper + x, leaf);
			nstarts++;
		}
	}
	return nstarts == n ? 0 : MAPKV_CORRUPT;
}

int pg_check(const page *p, unsigned psize)
{
	unsigned flags = pg_flags(p);
	if (flags == MK_P_LEAF)
		return check_page(p, psize, 1);
	if (flags == MK_P_BRANCH)
		return check_page(p, psize, 0);
	return MAPKV_CORRUPT;
}
