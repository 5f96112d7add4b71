/*
 * check_tools.c: the integrity check (mapkv_check) and hot copies
 * (mapkv_copy).
 *
 * The check must pass on every state a workload leaves (after each commit
 * of a random mix of puts, deletes, overflow values, named trees created
 * and dropped: this also proves that no page is ever lost or double-used
 * by the free-page records), and must find each kind of damage made on
 * purpose to a copy of a database, naming the page.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checksum.h"
#include "mapkv.h"
#include "page.h"
#include "testutil.h"

#define PS 4096u

typedef struct problems {
	int n;
	char text[4096];
	uint64_t pages[64];
} problems;

static int collect(void *ctx, uint64_t pgno, const char *msg)
{
	problems *p = ctx;
	if (p->n < 64)
		p->pages[p->n] = pgno;
	p->n++;
	size_t l = strlen(p->text);
	snprintf(p->text + l, sizeof(p->text) - l, "[%llu] %s\n",
		 (unsigned long long)pgno, msg);
	return 0;
}

/* Check the database at @path; returns the problems found. */
static problems check_file(const char *path, int *rc_out)
{
	problems p;
	memset(&p, 0, sizeof(p));
	mapkv_env *env;
	/* Read-only: a writable open would repair a damaged meta page. */
	mapkv_options o = {0, 0, MAPKV_RDONLY, 0, 0};
	int rc = mapkv_open(&env, path, &o);
	if (rc) {
		*rc_out = rc;
		return p;
	}
	mapkv_txn *txn = tu_begin(env, MAPKV_RDONLY);
	uint64_t n = 0;
	rc = mapkv_check(txn, collect, &p, &n);
	ck_assert_uint_eq(n, (uint64_t)p.n);
	mapkv_txn_abort(txn);
	mapkv_close(env);
	*rc_out = rc;
	return p;
}

static void assert_clean(mapkv_env *env, const char *when)
{
	problems p;
	memset(&p, 0, sizeof(p));
	mapkv_txn *txn = tu_begin(env, MAPKV_RDONLY);
	int rc = mapkv_check(txn, collect, &p, NULL);
	mapkv_txn_abort(txn);
	tu_check(rc == 0 && p.n == 0,
		 "%s: check found %d problems (rc %d):\n%s", when, p.n, rc,
		 p.text);
}

static tu_rng rng;

static void random_commit(mapkv_env *env, tu_model *m, mapkv_dbi *named,
			  int *have_named)
{
	mapkv_txn *txn = tu_begin(env, 0);
	int ops = 1 + (int)tu_rng_below(&rng, 300);
	for (int i = 0; i < ops; i++) {
		unsigned char k[32], v[9000];
		size_t kl = tu_make_seq_key(k, 8 + tu_rng_below(&rng, 20),
					    tu_rng_below(&rng, 5000));
		uint64_t r = tu_rng_below(&rng, 100);
		if (r < 30 && tu_model_count(m)) {
			const tu_entry *e = tu_model_at(
				m, tu_rng_below(&rng, tu_model_count(m)));
			unsigned char dk[MAPKV_MAX_KEY_SIZE];
			size_t dl = e->klen;
			memcpy(dk, e->key, dl);
			ck_assert_rc(tu_del_rc(txn, 0, dk, dl), 0);
			tu_model_del(m, dk, dl);
			continue;
		}
		size_t vl = r < 34 ? 2500 + tu_rng_below(&rng, 6000)
				   : tu_rng_below(&rng, 120);
		tu_fill_bytes(v, vl, tu_rng_next(&rng));
		tu_put(txn, 0, k, kl, v, vl);
		tu_model_put(m, k, kl, v, vl);
		if (r > 95) {
			if (!*have_named) {
				ck_assert_rc(mapkv_dbi_open(txn, "side",
							    MAPKV_CREATE,
							    named),
					     0);
				*have_named = 1;
			}
			tu_put(txn, *named, k, kl, v, vl);
		}
	}
	if (*have_named && tu_rng_below(&rng, 40) == 0) {
		ck_assert_rc(mapkv_dbi_drop(txn, *named, 1), 0);
		*have_named = 0;
	}
	tu_commit(txn);
}

START_TEST(test_check_passes_after_every_commit_of_a_random_workload)
{
	tu_rng_init(&rng, tu_seed(0xc4ec01));
	mapkv_env *env = tu_open("db", 0, 0);
	tu_model *m = tu_model_new();
	mapkv_dbi named = 0;
	int have_named = 0;
	int commits = (int)tu_scale(300, 3000);
	char when[64];
	for (int c = 0; c < commits; c++) {
		random_commit(env, m, &named, &have_named);
		snprintf(when, sizeof(when), "after commit %d", c);
		assert_clean(env, when);
	}
	tu_verify_db(env, 0, m);
	/* With a reader pinning an old snapshot too. */
	tu_reader *rd = tu_reader_start(env);
	for (int c = 0; c < 20; c++)
		random_commit(env, m, &named, &have_named);
	assert_clean(env, "with a reader held");
	tu_reader_stop(rd);
	mapkv_close(env);
	tu_model_free(m);
}
END_TEST

/* A writable open replaces a damaged meta page, so the file checks clean
 * afterwards and holds the same data. */
START_TEST(test_writable_open_repairs_a_damaged_meta_page)
{
	mapkv_env *env = tu_open("db", 0, 0);
	for (int i = 0; i < 5; i++) {
		mapkv_txn *txn = tu_begin(env, 0);
		char k[8];
		snprintf(k, sizeof(k), "k%d", i);
		tu_put_str(txn, 0, k, "v");
		tu_commit(txn);
	}
	mapkv_envinfo info = tu_env_info(env);
	mapkv_close(env);
	/* Damage the older meta page (the newer one is info.last_txnid % 2). */
	uint64_t older = (info.last_txnid + 1) % 2;
	tu_flip_byte(tu_path("db"), older * PS + 30, 0x10);
	int rc;
	problems p = check_file(tu_path("db"), &rc);
	tu_check(rc == MAPKV_CORRUPT && strstr(p.text, "meta page"),
		 "damaged meta page not reported (rc %d):\n%s", rc, p.text);
	env = tu_open("db", 0, 0);
	assert_clean(env, "after a writable open");
	mapkv_txn *txn = tu_begin(env, MAPKV_RDONLY);
	tu_expect_str(txn, 0, "k4", "v");
	mapkv_txn_abort(txn);
	mapkv_close(env);
	p = check_file(tu_path("db"), &rc);
	tu_check(rc == 0, "after repair and close:\n%s", p.text);
}
END_TEST

static void make_db(const char *name);

struct prog {
	uint64_t calls, last_done, total;
	int backwards;
};

static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
	struct prog *p = ctx;
	if (done < p->last_done || done > total)
		p->backwards = 1;
	p->calls++;
	p->last_done = done;
	p->total = total;
}

/* Progress goes forward, every 1,024 pages, and ends at the total. */
START_TEST(test_check_reports_progress_to_the_end)
{
	make_db("p.db");
	mapkv_env *env = tu_open("p.db", 0, 0);
	mapkv_txn *txn = tu_begin(env, MAPKV_RDONLY);
	struct prog p = {0, 0, 0, 0};
	uint64_t n = 1;
	ck_assert_rc(mapkv_check_progress(txn, NULL, on_progress, &p, &n), 0);
	ck_assert_uint_eq(n, 0);
	mapkv_envinfo info = tu_env_info(env);
	mapkv_txn_abort(txn);
	ck_assert_int_eq(p.backwards, 0);
	ck_assert_uint_eq(p.total, info.pages_used);
	ck_assert_uint_eq(p.last_done, p.total);
	ck_assert_uint_ge(p.calls, info.pages_used / 1024);
	mapkv_close(env);
}
END_TEST

START_TEST(test_check_refuses_a_write_transaction)
{
	mapkv_env *env = tu_open("db", 0, 0);
	mapkv_txn *txn = tu_begin(env, 0);
	ck_assert_rc(mapkv_check(txn, NULL, NULL, NULL), MAPKV_INVALID);
	mapkv_txn_abort(txn);
	mapkv_close(env);
}
END_TEST

/* ---- damage made on purpose ---- */

static unsigned char *img;
static size_t img_len;

static void load_image(const char *path)
{
	free(img);
	img = tu_read_file(path, &img_len);
}

static void save_image(const char *path)
{
	unlink(path);
	tu_write_file(path, img, img_len);
}

static unsigned char *page_at(pgno_t p)
{
	ck_assert_uint_lt((uint64_t)(p + 1) * PS, img_len + 1);
	return img + (size_t)p * PS;
}

/* The newest meta page of the image. */
static unsigned char *newest_meta(mk_meta *m)
{
	mk_meta a, b;
	int ra = pg_meta_decode(img, PS, &a),
	    rb = pg_meta_decode(img + PS, PS, &b);
	ck_assert(ra == 0 || rb == 0);
	if (rb || (ra == 0 && a.txnid > b.txnid)) {
		*m = a;
		return img;
	}
	*m = b;
	return img + PS;
}

static void rewrite_meta(unsigned char *where, mk_meta *m)
{
	uint32_t runs[2 * 488];
	for (uint32_t i = 0; i < m->nruns; i++) {
		runs[2 * i] = pg_ld32(where + MK_META_RUNS + 8 * i);
		runs[2 * i + 1] = pg_ld32(where + MK_META_RUNS + 8 * i + 4);
	}
	pg_meta_encode(where, PS, m, runs);
}

/* A database with a 3-level main tree, overflow values, a named tree and
 * free pages, closed, with both metas valid and no run list to verify. */
static void make_db(const char *name)
{
	mapkv_env *env = tu_open(name, 0, 0);
	mapkv_txn *txn = tu_begin(env, 0);
	unsigned char k[16], v[5000];
	for (int i = 0; i < 30000; i++) {
		tu_make_seq_key(k, 16, (uint64_t)i);
		size_t vl = i % 1000 == 7 ? 5000 : 40;
		tu_fill_bytes(v, vl, (uint64_t)i);
		tu_put(txn, 0, k, 16, v, vl);
	}
	mapkv_dbi d;
	ck_assert_rc(mapkv_dbi_open(txn, "named", MAPKV_CREATE, &d), 0);
	tu_put(txn, d, "a", 1, "b", 1);
	tu_commit(txn);
	txn = tu_begin(env, 0);
	for (int i = 0; i < 30000; i += 3) {
		tu_make_seq_key(k, 16, (uint64_t)i);
		ck_assert_rc(tu_del_rc(txn, 0, k, 16), 0);
	}
	tu_commit(txn);
	mapkv_close(env);
}

/* Descend the main tree of the image along the first child (or the
 * @which-th) to the level wanted. */
static pgno_t main_page(int level, unsigned which)
{
	mk_meta m;
	newest_meta(&m);
	pgno_t p = m.trees[MK_TREE_MAIN].root;
	for (int l = 0; l < level; l++) {
		unsigned char *pg = page_at(p);
		unsigned n = pg_nkeys(pg);
		p = nd_child(pg_node(pg, which < n ? which : n - 1));
	}
	return p;
}

typedef void (*damage_fn)(void);

static void dmg_meta_checksum(void)
{
	img[PS + 20] ^= 0x40; /* meta page 1 */
}

static void dmg_key_order(void)
{
	mk_meta m;
	newest_meta(&m);
	pgno_t leaf = main_page((int)m.trees[0].depth - 1, 1);
	unsigned char *pg = page_at(leaf);
	/* Make the first key of the leaf larger than the second. */
	unsigned char *n0 = (unsigned char *)pg_node(pg, 0);
	n0[MK_LEAF_HDR] = 0xff;
}

static void dmg_page_number(void)
{
	pgno_t leaf = main_page(1, 2);
	pg_st32(page_at(leaf), leaf + 1);
}

static void dmg_page_kind(void)
{
	pgno_t br = main_page(1, 0);
	pg_st16(page_at(br) + 4, MK_P_OVERFLOW);
}

static void dmg_overflow_header(void)
{
	/* Find an overflow run and change its length. */
	for (size_t p = 2; (p + 1) * PS <= img_len; p++) {
		unsigned char *pg = img + p * PS;
		if (pg_pgno(pg) == p && pg_flags(pg) == MK_P_OVERFLOW &&
		    pg_ovpages(pg) == 2) {
			pg_set_ovpages(pg, 3);
			return;
		}
	}
	ck_abort_msg("no overflow run found");
}

static void dmg_child_twice(void)
{
	/* A branch's second child points to its first: one subtree is
	 * reachable twice, the other lost. */
	mk_meta m;
	newest_meta(&m);
	pgno_t br = main_page((int)m.trees[0].depth - 2, 0);
	unsigned char *pg = page_at(br);
	pgno_t c0 = nd_child(pg_node(pg, 0));
	nd_set_child((uint8_t *)pg_node(pg, 1), c0);
}

static void dmg_entry_count(void)
{
	mk_meta m;
	unsigned char *where = newest_meta(&m);
	m.trees[MK_TREE_MAIN].entries += 5;
	rewrite_meta(where, &m);
}

static void dmg_lost_pages(void)
{
	mk_meta m;
	size_t off = (size_t)(newest_meta(&m) - img);
	/* Claim more pages than the trees and free records account for. */
	m.last_pgno += 3;
	size_t need = (size_t)m.last_pgno * PS;
	if (img_len < need) {
		unsigned char *big = calloc(1, need);
		ck_assert_ptr_nonnull(big);
		memcpy(big, img, img_len);
		free(img);
		img = big;
		img_len = need;
	}
	rewrite_meta(img + off, &m);
}

static void dmg_used_and_free(void)
{
	/* Point a branch child at a page the free-page tree lists. */
	mk_meta m;
	newest_meta(&m);
	pgno_t froot = m.trees[MK_TREE_FREE].root;
	ck_assert_uint_ne(froot, 0);
	unsigned char *fp = page_at(froot);
	ck_assert_uint_eq(pg_flags(fp), MK_P_LEAF);
	const uint8_t *nd = pg_node(fp, 0);
	pgno_t freep = 0;
	for (unsigned i = 0; i < nd_leaf_vsize(nd) / 4 && !freep; i++)
		freep = pg_ld32(nd_leaf_val(nd) + 4 * i);
	ck_assert_uint_ne(freep, 0);
	pgno_t br = main_page(0, 0);
	nd_set_child((uint8_t *)pg_node(page_at(br), 0), freep);
}

static void dmg_separator(void)
{
	/* A separator in the root larger than the keys of its right child's
	 * right sibling region: keys then lie outside their range. */
	pgno_t root = main_page(0, 0);
	unsigned char *pg = page_at(root);
	ck_assert_uint_ge(pg_nkeys(pg), 3);
	uint8_t *n1 = (uint8_t *)pg_node(pg, 1);
	n1[MK_BRANCH_HDR] = 0x01; /* far below every key ('0'...) */
	(void)n1;
}

static const struct {
	const char *name;
	damage_fn fn;
	const char *expect; /* a word the report must contain */
} damages[] = {
	{"meta checksum", dmg_meta_checksum, "meta page 1"},
	{"keys out of order", dmg_key_order, "order"},
	{"page number", dmg_page_number, "says it is page"},
	{"page kind", dmg_page_kind, "should be a"},
	{"overflow header", dmg_overflow_header, "overflow"},
	{"child reachable twice", dmg_child_twice, "more than once"},
	{"entry count", dmg_entry_count, "entries found"},
	{"lost pages", dmg_lost_pages, "neither used nor free"},
	{"used and free", dmg_used_and_free, "both used and free"},
	{"separator range", dmg_separator, "outside the range"},
};

START_TEST(test_check_finds_each_kind_of_damage)
{
	make_db("good.db");
	char good[4096]; /* tu_path's buffers rotate: keep a copy */
	snprintf(good, sizeof(good), "%s", tu_path("good.db"));
	int rc;
	problems p = check_file(good, &rc);
	tu_check(rc == 0 && p.n == 0, "the undamaged file: rc %d\n%s", rc,
		 p.text);
	for (size_t i = 0; i < sizeof(damages) / sizeof(damages[0]); i++) {
		const char *bad = tu_path("bad.db");
		load_image(good);
		damages[i].fn();
		save_image(bad);
		p = check_file(bad, &rc);
		tu_check(rc == MAPKV_CORRUPT && p.n > 0,
			 "%s: check returned %d with %d problems",
			 damages[i].name, rc, p.n);
		tu_check(strstr(p.text, damages[i].expect) != NULL,
			 "%s: the report does not mention '%s':\n%s",
			 damages[i].name, damages[i].expect, p.text);
	}
	free(img);
	img = NULL;
}
END_TEST

/* ---- copies ---- */

/* @a and @b are names in the test's directory. */
static void compare_dbs(const char *a, const char *b)
{
	mapkv_env *ea = tu_open(a, MAPKV_RDONLY, 0),
		  *eb = tu_open(b, MAPKV_RDONLY, 0);
	mapkv_txn *ta = tu_begin(ea, MAPKV_RDONLY),
		  *tb = tu_begin(eb, MAPKV_RDONLY);
	mapkv_cursor *ca, *cb;
	ck_assert_rc(mapkv_cursor_open(ta, 0, &ca), 0);
	ck_assert_rc(mapkv_cursor_open(tb, 0, &cb), 0);
	mapkv_val ka, va, kb, vb;
	uint64_t n = 0;
	for (;;) {
		int ra = mapkv_cursor_get(ca, &ka, &va, MAPKV_NEXT);
		int rb = mapkv_cursor_get(cb, &kb, &vb, MAPKV_NEXT);
		ck_assert_int_eq(ra, rb);
		if (ra)
			break;
		ck_assert(ka.size == kb.size &&
			  !memcmp(ka.data, kb.data, ka.size));
		ck_assert(va.size == vb.size &&
			  !memcmp(va.data, vb.data, va.size));
		n++;
	}
	ck_assert_uint_gt(n, 0);
	mapkv_cursor_close(ca);
	mapkv_cursor_close(cb);
	mapkv_dbi da, db;
	ck_assert_rc(mapkv_dbi_open(ta, "named", 0, &da), 0);
	ck_assert_rc(mapkv_dbi_open(tb, "named", 0, &db), 0);
	tu_expect_str(tb, db, "a", "b");
	mapkv_txn_abort(ta);
	mapkv_txn_abort(tb);
	mapkv_close(ea);
	mapkv_close(eb);
}

START_TEST(test_copy_plain_and_compact_are_checked_equal_and_compact_is_smaller)
{
	make_db("src.db");
	mapkv_env *env = tu_open("src.db", 0, 0);
	/* A writer keeps going after the copies began (here, after). */
	ck_assert_rc(mapkv_copy(env, tu_path("plain.db"), 0), 0);
	ck_assert_rc(mapkv_copy(env, tu_path("compact.db"), MAPKV_COPY_COMPACT),
		     0);
	mapkv_txn *txn = tu_begin(env, 0);
	tu_put_str(txn, 0, "later", "not in the copies");
	tu_commit(txn);
	ck_assert_rc(mapkv_copy(env, tu_path("plain.db"), 0), MAPKV_EXISTS);
	ck_assert_rc(mapkv_copy(env, tu_path("x.db"), 0x100), MAPKV_INVALID);
	mapkv_close(env);

	int rc;
	problems p = check_file(tu_path("plain.db"), &rc);
	tu_check(rc == 0, "plain copy: %s", p.text);
	p = check_file(tu_path("compact.db"), &rc);
	tu_check(rc == 0, "compact copy: %s", p.text);
	compare_dbs("plain.db", "compact.db");
	uint64_t splain = tu_file_size(tu_path("plain.db"));
	uint64_t scompact = tu_file_size(tu_path("compact.db"));
	tu_check(scompact < splain, "compact copy %llu bytes, plain %llu",
		 (unsigned long long)scompact, (unsigned long long)splain);
	/* The compact copy holds no more pages than the live data needs:
	 * its pages in use are within a few of its trees' pages. */
	env = tu_open("compact.db", MAPKV_RDONLY, 0);
	mapkv_envinfo info = tu_env_info(env);
	txn = tu_begin(env, MAPKV_RDONLY);
	mapkv_stat_info st = tu_stat(txn, 0);
	tu_expect_str(txn, 0, "later", NULL);
	mapkv_txn_abort(txn);
	uint64_t live = st.branch_pages + st.leaf_pages + st.overflow_pages;
	tu_check(info.pages_used <= live + 16,
		 "compact copy uses %llu pages for %llu live ones",
		 (unsigned long long)info.pages_used, (unsigned long long)live);
	mapkv_close(env);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("tools");
	TCase *tc = tu_tcase(s, "check", 300);
	tcase_add_test(
		tc, test_check_passes_after_every_commit_of_a_random_workload);
	tcase_add_test(tc, test_check_refuses_a_write_transaction);
	tcase_add_test(tc, test_check_reports_progress_to_the_end);
	tcase_add_test(tc, test_writable_open_repairs_a_damaged_meta_page);
	tcase_add_test(tc, test_check_finds_each_kind_of_damage);
	tcase_add_test(
		tc,
		test_copy_plain_and_compact_are_checked_equal_and_compact_is_smaller);
	return tu_run_suite(s);
}
