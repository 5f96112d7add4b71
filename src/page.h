/*
 * page.h: the on-disk format of a mapkv file. Every byte of the file is
 * described here (doc/format.md says the same for readers of the file);
 * the rest of the library reads and writes pages only through the
 * accessors below.
 *
 * FILE
 *   A database is one file of fixed-size pages (page size P, a power of two
 *   from 4096 to 32768, chosen at creation from the OS page size and
 *   recorded in the meta pages). Page n starts at byte n * P. Pages 0 and 1
 *   are the two meta pages; every other page is a branch, leaf or overflow
 *   page, or free. All integers are little-endian, whatever the host.
 *   The file may be longer than the pages in use (growth is amortised);
 *   bytes past the high-water mark are meaningless.
 *
 * META PAGE (pages 0 and 1); a commit with id T writes page T % 2.
 *   off size field
 *     0    4 magic        0x564B504D ("MPKV" read as little-endian bytes)
 *     4    4 version      format version, MK_FORMAT_VERSION (1)
 *     8    4 page_size    P
 *    12    4 flags        0 (reserved)
 *    16    8 txnid        id of the commit that wrote this page
 *    24    8 last_pgno    high-water mark: pages [0, last_pgno) are in use
 *                         or free; the file holds at least this many pages
 *    32   48 tree[0]      the main tree           (tree record, below)
 *    80   48 tree[1]      the catalog of named trees
 *   128   48 tree[2]      the free-page tree
 *   176    4 nruns        runs of pages this commit wrote that open must
 *                         verify (0: none; see COMMITS below)
 *   180    4 data_crc     CRC-32C over the contents of those pages, in
 *                         list order
 *   184    4 checksum     CRC-32C of bytes [0, 184) followed by the run
 *                         list
 *   188 8*n runs          nruns x (4 pgno, 4 page count)
 *   .. P                  zero
 *   Open reads both, ignores one whose magic, checksum or fields are
 *   invalid (or whose last_pgno lies past the end of the file, or whose
 *   runs do not match data_crc), and uses the valid one with the larger
 *   txnid.
 *
 * COMMITS
 *   A commit writes its pages, then the meta page. When its pages fit in
 *   the run list (and are few enough to re-read cheaply), one sync after
 *   the meta write makes both durable, and the list with data_crc lets open
 *   tell a complete commit from one whose meta reached the disk without
 *   all of its pages: such a meta page fails verification and the previous
 *   one is used (its pages were not overwritten: a commit writes only
 *   pages free in the previous snapshot). Otherwise the commit syncs its
 *   pages before writing the meta page (nruns = 0) and syncs again.

 * TREE RECORD (48 bytes; in meta pages and as catalog values)
 *     0    4 root         root page number, 0 when the tree is empty
 *     4    4 depth        levels (0 empty, 1 = root is a leaf)
 *     8    8 entries      key/value pairs
 *    16    8 branch_pages
 *    24    8 leaf_pages
 *    32    8 overflow_pages
 *    40    4 flags        0 (reserved)
 *    44    4 reserved     0
 *
 * PAGE HEADER (16 bytes at the start of every branch, leaf, overflow page)
 *     0    4 pgno         the page's own number (a page found elsewhere is
 *                         damage)
 *     4    2 flags        MK_P_BRANCH 0x01, MK_P_LEAF 0x02,
 *                         MK_P_OVERFLOW 0x04
 *     6    2 nkeys        nodes on a branch or leaf page
 *     8    2 lower        end of the slot array (16 + 2 * nkeys)
 *    10    2 upper        start of the node heap (<= P; a 16-bit field,
 *                         hence the 32768 limit on P)
 *    12    4 ovpages      overflow pages: length of the run; else 0
 *
 * BRANCH AND LEAF PAGES (slotted)
 *   After the header, nkeys 2-byte slots give the offset of each node,
 *   in key order; nodes are packed at the end of the page, growing down;
 *   [lower, upper) is free space.
 *   Leaf node:   0 1 flags (MK_N_BIG 0x01: the value is in overflow
 *                         pages), 1 1 reserved 0, 2 2 ksize, 4 4 vsize
 *                (the value's true size), 8 key bytes, then the value
 *                bytes, or for MK_N_BIG a 4-byte page number of the first
 *                overflow page.
 *   Branch node: 0 4 child page number, 4 2 ksize, 6 key bytes. The key
 *                of node 0 is empty and means "smaller than node 1's key";
 *                node i's child holds the keys k with key_i <= k <
 *                key_{i+1}. Keys in branch pages are separators: the
 *                shortest prefix that separates two children, not
 *                necessarily a stored key.
 *   Keys compare as unsigned bytes (memcmp), a shorter key first when one
 *   is a prefix of the other.
 *   A valid page: every node lies inside [upper, P), no two nodes share a
 *   byte (so the node bytes and slots fit in P - 16 bytes, and a page holds
 *   at most (P - 16) / 8 nodes), keys are 1..1024 bytes (branch node 0:
 *   empty) and strictly increasing, and a leaf node's flags are 0 or
 *   MK_N_BIG. A valid tree reaches each of its pages (and overflow runs)
 *   by exactly one path, all leaves at the depth its record gives, and
 *   each leaf's keys lie above those of the leaf before it.
 *
 * INLINE LIMIT
 *   A leaf node is at most NODE_MAX = (P - 16) / 2 - 2 bytes (header, key
 *   and inline value; pg_node_max): 2038, 4086, 8182, 16374 bytes for P =
 *   4, 8, 16, 32 KiB. Any two nodes with their slots then fill at most the
 *   P - 16 bytes after the page header. A value is stored inline when
 *   8 + key size + value size <= NODE_MAX, otherwise in overflow pages
 *   (the node then holds the 4-byte page number: 8 + key size + 4 bytes,
 *   within NODE_MAX since keys are at most 1024 bytes). Branch nodes are
 *   at most 6 + 1024 bytes, also within NODE_MAX. So a page that must take
 *   one more node can always be split in two by bytes: the cut just
 *   before or just after the new node leaves both halves within a page
 *   (see split_page in btree.c); no node ever needs a page of its own.
 *
 * OVERFLOW PAGES
 *   A value too large for a leaf (a node over NODE_MAX) lives in a run of
 *   contiguous pages: a page header (flags MK_P_OVERFLOW, ovpages = run
 *   length) then the value bytes, continuing across the following pages
 *   with no further headers, so that a reader gets one pointer into the
 *   map. A run holds ceil((16 + value size) / P) pages.
 *
 * FREE-PAGE TREE (tree[2])
 *   An ordinary B+tree of this format. Key: 16 bytes, two big-endian
 *   64-bit numbers (so that memcmp orders them numerically): the id T of
 *   the commit that freed the pages, then a chunk number. Value: an array
 *   of 4-byte little-endian page numbers (every page of an overflow run is
 *   listed), in any order (writers list short runs of consecutive pages
 *   before long ones, see pgvec_order_extents in src/pager.h); the entry 0
 *   means "no page" (padding). A record holds at most
 *   pg_free_chunk(P) entries, so it always fits in a leaf and a writer
 *   loads and rewrites free pages a chunk at a time. Pages of records with
 *   id T may be overwritten once no reader uses a snapshot older than T.
 *   Id 0 holds pages that were already free for every reader and were left
 *   over by a writer (the chunk number is then that writer's id times
 *   65536 plus a chunk index). A page is listed at most once in the whole
 *   tree, and never while a tree reaches it (writers that find otherwise
 *   fail with MAPKV_CORRUPT; see doc/reliability.md).
 *
 * CATALOG (tree[1])
 *   Key: the name of a named tree (1 to 255 bytes, no terminating NUL).
 *   Value: its 48-byte tree record.
 */
#ifndef MAPKV_PAGE_H
#define MAPKV_PAGE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define MK_MAGIC 0x564B504Du
#define MK_FORMAT_VERSION 1u
#define MK_META_SIZE 184u /* fixed meta bytes; the checksum follows */
#define MK_META_RUNS 188u /* offset of the run list */
#define MK_TREE_REC_SIZE 48u
#define MK_MIN_PAGE 4096u
#define MK_MAX_PAGE 32768u
#define MK_NUM_META 2u
#define MK_NAME_MAX 255u

#define MK_PAGE_HDR 16u
#define MK_P_BRANCH 0x01u
#define MK_P_LEAF 0x02u
#define MK_P_OVERFLOW 0x04u

#define MK_N_BIG 0x01u
#define MK_LEAF_HDR 8u
#define MK_BRANCH_HDR 6u

/* Trees whose records live in the meta page. */
#define MK_TREE_MAIN 0
#define MK_TREE_CATALOG 1
#define MK_TREE_FREE 2
#define MK_NUM_TREES 3

typedef uint32_t pgno_t;
typedef uint8_t page; /* a page is P bytes; use the accessors */

/* ---- little-endian access, whatever the host ---- */
static inline uint16_t pg_ld16(const void *p)
{
	const uint8_t *b = p;
	return (uint16_t)(b[0] | (b[1] << 8));
}
static inline uint32_t pg_ld32(const void *p)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
#else
	const uint8_t *b = p;
	return (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) |
	       ((uint32_t)b[3] << 24);
#endif
}
static inline uint64_t pg_ld64(const void *p)
{
	const uint8_t *b = p;
	return (uint64_t)pg_ld32(b) | ((uint64_t)pg_ld32(b + 4) << 32);
}
static inline void pg_st16(void *p, uint16_t v)
{
	uint8_t *b = p;
	b[0] = (uint8_t)v;
	b[1] = (uint8_t)(v >> 8);
}
static inline void pg_st32(void *p, uint32_t v)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	memcpy(p, &v, 4);
#else
	uint8_t *b = p;
	b[0] = (uint8_t)v;
	b[1] = (uint8_t)(v >> 8);
	b[2] = (uint8_t)(v >> 16);
	b[3] = (uint8_t)(v >> 24);
#endif
}
static inline void pg_st64(void *p, uint64_t v)
{
	uint8_t *b = p;
	pg_st32(b, (uint32_t)v);
	pg_st32(b + 4, (uint32_t)(v >> 32));
}

/* ---- page header ---- */
static inline pgno_t pg_pgno(const page *p)
{
	return pg_ld32(p);
}
static inline uint16_t pg_flags(const page *p)
{
	return pg_ld16(p + 4);
}
static inline uint16_t pg_nkeys(const page *p)
{
	return pg_ld16(p + 6);
}
static inline uint16_t pg_lower(const page *p)
{
	return pg_ld16(p + 8);
}
static inline uint16_t pg_upper(const page *p)
{
	return pg_ld16(p + 10);
}
static inline uint32_t pg_ovpages(const page *p)
{
	return pg_ld32(p + 12);
}
static inline void pg_set_pgno(page *p, pgno_t n)
{
	pg_st32(p, n);
}
static inline void pg_set_ovpages(page *p, uint32_t n)
{
	pg_st32(p + 12, n);
}
static inline uint16_t pg_slot(const page *p, unsigned i)
{
	return pg_ld16(p + MK_PAGE_HDR + 2 * i);
}
/* Free bytes between the slot array and the node heap. */
static inline unsigned pg_free(const page *p)
{
	return (unsigned)pg_upper(p) - pg_lower(p);
}

/* ---- nodes ---- */
static inline const uint8_t *pg_node(const page *p, unsigned i)
{
	return p + pg_slot(p, i);
}
static inline unsigned nd_flags(const uint8_t *n)
{
	return n[0];
}
static inline unsigned nd_leaf_ksize(const uint8_t *n)
{
	return pg_ld16(n + 2);
}
static inline uint32_t nd_leaf_vsize(const uint8_t *n)
{
	return pg_ld32(n + 4);
}
static inline const uint8_t *nd_leaf_key(const uint8_t *n)
{
	return n + MK_LEAF_HDR;
}
static inline const uint8_t *nd_leaf_val(const uint8_t *n)
{
	return n + MK_LEAF_HDR + nd_leaf_ksize(n);
}
static inline unsigned nd_leaf_size(const uint8_t *n)
{
	return MK_LEAF_HDR + nd_leaf_ksize(n) +
	       ((nd_flags(n) & MK_N_BIG) ? 4u : nd_leaf_vsize(n));
}
static inline pgno_t nd_child(const uint8_t *n)
{
	return pg_ld32(n);
}
static inline unsigned nd_branch_ksize(const uint8_t *n)
{
	return pg_ld16(n + 4);
}
static inline const uint8_t *nd_branch_key(const uint8_t *n)
{
	return n + MK_BRANCH_HDR;
}
static inline unsigned nd_branch_size(const uint8_t *n)
{
	return MK_BRANCH_HDR + nd_branch_ksize(n);
}
static inline void nd_set_child(uint8_t *n, pgno_t c)
{
	pg_st32(n, c);
}

/* Largest node (header + key + inline value) a leaf keeps inline: with
 * its 2-byte slot, half of the P - 16 bytes after the page header, so any
 * two nodes fit in one page and a split always succeeds (INLINE LIMIT
 * above). A larger value goes to overflow pages. */
static inline unsigned pg_node_max(unsigned psize)
{
	return (psize - MK_PAGE_HDR) / 2 - 2;
}

/* Most nodes a valid page holds: the smallest node is a branch node 0 (6
 * bytes, empty key), and nodes and slots never share bytes. pg_check
 * enforces it, so arrays of pg_max_nodes(P) + 1 entries hold the nodes of
 * any page plus one new node. */
static inline unsigned pg_max_nodes(unsigned psize)
{
	return (psize - MK_PAGE_HDR) / (2 + MK_BRANCH_HDR);
}

/* Entries in one free-page record: the node (8-byte header, 16-byte key,
 * the array) must stay inline in a leaf. */
#define MK_FREE_KEY 16u
static inline unsigned pg_free_chunk(unsigned psize)
{
	return (pg_node_max(psize) - MK_LEAF_HDR - MK_FREE_KEY) / 4;
}

/* Pages an overflow run needs for a value of @size bytes. */
static inline uint64_t pg_ov_pages(unsigned psize, uint64_t size)
{
	return (MK_PAGE_HDR + size + psize - 1) / psize;
}

/* ---- decoded meta page and tree record ---- */
typedef struct tree_rec {
	pgno_t root;
	uint32_t depth;
	uint64_t entries;
	uint64_t branch_pages;
	uint64_t leaf_pages;
	uint64_t overflow_pages;
	uint32_t flags;
} tree_rec;

typedef struct mk_meta {
	uint32_t magic;
	uint32_t version;
	uint32_t page_size;
	uint32_t flags;
	uint64_t txnid;
	uint64_t last_pgno;
	tree_rec trees[MK_NUM_TREES];
	uint32_t nruns; /* runs to verify at open (in the page image) */
	uint32_t data_crc;
} mk_meta;

/* Most runs a meta page of @psize bytes can list. */
static inline unsigned pg_meta_max_runs(unsigned psize)
{
	return (psize - MK_META_RUNS) / 8;
}

void pg_tree_encode(uint8_t *out, const tree_rec *t);
void pg_tree_decode(const uint8_t *in, tree_rec *t);

/* Encode @m into a page of @psize bytes at @out, checksum included, with
 * m->nruns runs from @runs (pairs of page number and count). */
void pg_meta_encode(uint8_t *out, unsigned psize, const mk_meta *m,
		    const uint32_t *runs);

/* Run i of a meta page image that pg_meta_decode accepted. */
static inline void pg_meta_run(const uint8_t *in, unsigned i, pgno_t *pgno,
			       uint32_t *n)
{
	*pgno = pg_ld32(in + MK_META_RUNS + 8 * i);
	*n = pg_ld32(in + MK_META_RUNS + 8 * i + 4);
}

/* Decode and validate one meta page image of @len bytes. Returns 0,
 * MAPKV_CORRUPT (not a meta page, bad checksum or field) or
 * MAPKV_VERSION_MISMATCH (a mapkv meta page of another version). */
int pg_meta_decode(const uint8_t *in, size_t len, mk_meta *m);

/* Initialise an empty branch or leaf page. */
void pg_init(page *p, pgno_t pgno, unsigned flags, unsigned psize);

/* Check that a branch/leaf page of @psize bytes is valid (BRANCH AND LEAF
 * PAGES above): header and slots consistent, every node inside the node
 * heap and sharing no byte with another, keys 1..MAPKV_MAX_KEY_SIZE bytes
 * and strictly increasing. Returns 0 or MAPKV_CORRUPT. Searches run only
 * the header check (pg_check_hdr) and per-node bounds checks; this full
 * one runs in the integrity checker and on every committed page a writer
 * copies, edits or moves nodes from, so nodes can be moved by their
 * recorded sizes and nkeys is at most pg_max_nodes(). */
int pg_check(const page *p, unsigned psize);

/* The header-only check done on every page visit. */
static inline int pg_check_hdr(const page *p, pgno_t pgno, unsigned flags,
			       unsigned psize)
{
	unsigned lower = pg_lower(p), upper = pg_upper(p);
	return pg_pgno(p) == pgno && (pg_flags(p) & 7u) == flags &&
	       lower == MK_PAGE_HDR + 2u * pg_nkeys(p) && lower <= upper &&
	       upper <= psize;
}

/* Compare two byte strings in mapkv order. */
static inline int mk_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
	size_t n = alen < blen ? alen : blen;
	int c = n ? memcmp(a, b, n) : 0;
	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

#endif /* MAPKV_PAGE_H */
