/*
 * damage.c: makes one kind of damage to a copy of a mapkv database, for
 * the tests of `mapkv check` in tests/shell/run.sh.
 *
 *   damage --list        the kinds, one per line
 *   damage FILE KIND     damage FILE; print the number of the page hit
 *
 * The file must be a copy made by `mapkv copy` (meta pages without a run
 * list, so open does not refuse the newest commit for damage to its
 * pages) of a database whose main tree is at least two levels deep and
 * holds a value in overflow pages. Pages are found and changed through
 * the format accessors of src/page.h (one field has no setter, see
 * page-type).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "page.h"

static uint8_t *img;
static size_t img_len;
static unsigned ps;

static page *pg(pgno_t n)
{
	return img + (size_t)n * ps;
}

static uint8_t *slot_ptr(page *p, unsigned i)
{
	return p + MK_PAGE_HDR + 2 * i;
}

static int fail(const char *msg)
{
	fprintf(stderr, "damage: %s\n", msg);
	return 1;
}

/* The leftmost leaf under a branch child, and the branch above it. */
static pgno_t child(pgno_t branch, unsigned i)
{
	return nd_child(pg_node(pg(branch), i));
}

/* A leaf of the main tree that holds a node in overflow pages; its first
 * such node's index goes to *idx. 0 when there is none. */
static pgno_t find_big(pgno_t root, unsigned depth, unsigned *idx)
{
	page *p = pg(root);
	unsigned i;

	if (depth == 1) {
		for (i = 0; i < pg_nkeys(p); i++)
			if (nd_flags(pg_node(p, i)) & MK_N_BIG) {
				*idx = i;
				return root;
			}
		return 0;
	}
	for (i = 0; i < pg_nkeys(p); i++) {
		pgno_t l = find_big(child(root, i), depth - 1, idx);

		if (l)
			return l;
	}
	return 0;
}

static const char *const kinds[] = {
	"meta-checksum", /* a meta page's bytes no longer match its checksum */
	"page-number",   /* a leaf claims to be another page */
	"page-type",     /* a branch page is marked as a leaf */
	"key-order",     /* two keys of a leaf swapped */
	"separator",     /* a leaf key below its parent's separator */
	"node-bounds",   /* a node offset past the end of the page */
	"entry-count",   /* the main tree's record counts one entry more */
	"double-use",    /* two branch entries point at the same child */
	"lost-pages",    /* pages past the high-water mark, neither used
			    nor free */
	"overflow",      /* an overflow run's header damaged */
	"free-used",     /* the free-page tree's root is a used leaf */
};

/* Rewrite both meta pages from @m (each keeps its own commit id). */
static void write_metas(const mk_meta *m)
{
	unsigned i;

	for (i = 0; i < MK_NUM_META; i++) {
		mk_meta mi;

		if (pg_meta_decode(pg(i), ps, &mi) != 0)
			continue;
		mi.last_pgno = m->last_pgno;
		memcpy(mi.trees, m->trees, sizeof mi.trees);
		pg_meta_encode(pg(i), ps, &mi, NULL);
	}
}

int main(int argc, char **argv)
{
	mk_meta m, m1;
	FILE *f;
	long size;
	pgno_t root, leaf, leaf2, target = 0;
	page *p;
	unsigned i, idx;
	uint16_t a, b;
	uint8_t *n;

	if (argc == 2 && strcmp(argv[1], "--list") == 0) {
		for (i = 0; i < sizeof kinds / sizeof *kinds; i++)
			puts(kinds[i]);
		return 0;
	}
	if (argc != 3)
		return fail("usage: damage FILE KIND | --list");
	f = fopen(argv[1], "r+b");
	if (!f || fseek(f, 0, SEEK_END) || (size = ftell(f)) < 0)
		return fail("cannot open the file");
	img_len = (size_t)size;
	img = malloc(img_len + 1);
	rewind(f);
	if (!img || fread(img, 1, img_len, f) != img_len)
		return fail("cannot read the file");
	if (img_len < 2 * MK_MIN_PAGE || pg_meta_decode(img, img_len, &m) != 0)
		return fail("meta page 0 is not valid");
	ps = m.page_size;
	if (pg_meta_decode(pg(1), ps, &m1) == 0 && m1.txnid > m.txnid)
		m = m1;
	root = m.trees[MK_TREE_MAIN].root;
	if (m.trees[MK_TREE_MAIN].depth != 2)
		return fail("the main tree must be two levels deep");
	leaf = child(root, 0);
	leaf2 = child(root, 1);

	if (strcmp(argv[2], "meta-checksum") == 0) {
		/* The older meta page, so the file still opens. */
		target = m.txnid % MK_NUM_META == 0 ? 1 : 0;
		pg(target)[20] ^= 0x5a; /* inside the commit id */
	} else if (strcmp(argv[2], "page-number") == 0) {
		target = leaf;
		pg_set_pgno(pg(leaf), leaf2);
	} else if (strcmp(argv[2], "page-type") == 0) {
		target = root;
		/* page.h has no setter for the flags (only pg_init, which
		 * would empty the page): they are the 16 bits at offset 4
		 * of the page header (doc/format.md). */
		pg_st16(pg(root) + 4, MK_P_LEAF);
	} else if (strcmp(argv[2], "key-order") == 0) {
		target = leaf;
		p = pg(leaf);
		if (pg_nkeys(p) < 2)
			return fail("the first leaf has one key");
		a = pg_slot(p, 0);
		b = pg_slot(p, 1);
		pg_st16(slot_ptr(p, 0), b);
		pg_st16(slot_ptr(p, 1), a);
	} else if (strcmp(argv[2], "separator") == 0) {
		/* The second leaf's first key made smaller than every key
		 * of the first leaf: still in order inside its page. */
		target = leaf2;
		n = (uint8_t *)pg_node(pg(leaf2), 0);
		if (nd_leaf_ksize(n) < 1 || nd_leaf_key(n)[0] == 0)
			return fail("cannot lower the second leaf's first key");
		((uint8_t *)nd_leaf_key(n))[0] = 0;
	} else if (strcmp(argv[2], "node-bounds") == 0) {
		target = leaf;
		pg_st16(slot_ptr(pg(leaf), 0), (uint16_t)(ps - 2));
	} else if (strcmp(argv[2], "entry-count") == 0) {
		target = root;
		m.trees[MK_TREE_MAIN].entries++;
		write_metas(&m);
	} else if (strcmp(argv[2], "double-use") == 0) {
		/* child 1 now points where child 0 does */
		target = leaf;
		nd_set_child((uint8_t *)pg_node(pg(root), 1), leaf);
	} else if (strcmp(argv[2], "lost-pages") == 0) {
		/* Three more pages under the high-water mark, in the file
		 * but in no tree and not free. */
		target = (pgno_t)m.last_pgno;
		if (img_len < (m.last_pgno + 3) * ps) {
			uint8_t *bigger = calloc(1, (m.last_pgno + 3) * ps);

			if (!bigger)
				return fail("out of memory");
			memcpy(bigger, img, img_len);
			free(img);
			img = bigger;
			img_len = (m.last_pgno + 3) * ps;
		}
		m.last_pgno += 3;
		write_metas(&m);
	} else if (strcmp(argv[2], "overflow") == 0) {
		pgno_t big = find_big(root, 2, &idx);

		if (!big)
			return fail("no value in overflow pages");
		n = (uint8_t *)pg_node(pg(big), idx);
		target = pg_ld32(nd_leaf_val(n));
		pg_set_ovpages(pg(target), 0); /* the run's length */
	} else if (strcmp(argv[2], "free-used") == 0) {
		target = leaf2;
		m.trees[MK_TREE_FREE].root = leaf2;
		m.trees[MK_TREE_FREE].depth = 1;
		m.trees[MK_TREE_FREE].leaf_pages = 1;
		m.trees[MK_TREE_FREE].entries = pg_nkeys(pg(leaf2));
		write_metas(&m);
	} else {
		return fail("unknown kind (--list lists them)");
	}
	rewind(f);
	if (fwrite(img, 1, img_len, f) != img_len || fclose(f) != 0)
		return fail("cannot write the file");
	printf("%u\n", (unsigned)target);
	free(img);
	return 0;
}
