/*
 * check_page.c: the on-disk format (page.h): meta pages, page layout,
 * other format versions and page sizes, and crash safety of creating a
 * file (an I/O error or a torn write while mapkv_open creates the file
 * leaves a file that opens again as an empty database).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checksum.h"
#include "mapkv.h"
#include "os.h"
#include "env.h"
#include "page.h"
#include "testutil.h"

int env_open_vfs(mapkv_env **out, const char *path, const mapkv_options *opts,
		 os_vfs *vfs);

/* Commit one key/value pair of C strings. */
static void put1(mapkv_env *env, const char *k, const char *v)
{
	mapkv_txn *txn = tu_begin(env, 0);
	tu_put_str(txn, 0, k, v);
	tu_commit(txn);
}

static mk_meta sample_meta(void)
{
	mk_meta m;
	memset(&m, 0, sizeof(m));
	m.magic = MK_MAGIC;
	m.version = MK_FORMAT_VERSION;
	m.page_size = 4096;
	m.txnid = 0x0102030405060708ull;
	m.last_pgno = 1000;
	m.trees[0].root = 17;
	m.trees[0].depth = 3;
	m.trees[0].entries = 123456789;
	m.trees[0].branch_pages = 5;
	m.trees[0].leaf_pages = 400;
	m.trees[0].overflow_pages = 9;
	m.trees[2].root = 999;
	m.trees[2].depth = 1;
	m.trees[2].leaf_pages = 1;
	return m;
}

START_TEST(test_meta_round_trip_and_little_endian_layout)
{
	uint8_t buf[4096];
	mk_meta m = sample_meta(), d;
	memset(&d, 0, sizeof(d));
	pg_meta_encode(buf, 4096, &m, NULL);
	/* Fixed offsets, little-endian, as page.h documents. */
	ck_assert_uint_eq(buf[0], 0x4D);
	ck_assert_uint_eq(buf[1], 0x50);
	ck_assert_uint_eq(buf[2], 0x4B);
	ck_assert_uint_eq(buf[3], 0x56);
	ck_assert_uint_eq(buf[16], 0x08);
	ck_assert_uint_eq(buf[23], 0x01);
	ck_assert_uint_eq(pg_ld32(buf + 32), 17);
	ck_assert_uint_eq(pg_ld32(buf + MK_META_SIZE),
			  ck_crc32c(0, buf, MK_META_SIZE));
	for (unsigned i = MK_META_RUNS; i < 4096; i++)
		ck_assert_uint_eq(buf[i], 0);
	ck_assert_int_eq(pg_meta_decode(buf, sizeof(buf), &d), 0);
	ck_assert(memcmp(&m.trees, &d.trees, sizeof(m.trees)) == 0);
	ck_assert_uint_eq(d.txnid, m.txnid);
	ck_assert_uint_eq(d.last_pgno, m.last_pgno);
}
END_TEST

START_TEST(test_meta_any_flipped_bit_is_rejected)
{
	uint8_t buf[4096];
	mk_meta m = sample_meta(), d;
	pg_meta_encode(buf, 4096, &m, NULL);
	for (unsigned i = 0; i < MK_META_RUNS * 8; i++) {
		buf[i / 8] ^= (uint8_t)(1u << (i % 8));
		int rc = pg_meta_decode(buf, sizeof(buf), &d);
		ck_assert_msg(rc == MAPKV_CORRUPT, "bit %u accepted (rc %d)", i,
			      rc);
		buf[i / 8] ^= (uint8_t)(1u << (i % 8));
	}
}
END_TEST

START_TEST(test_meta_other_version_is_version_mismatch)
{
	uint8_t buf[4096];
	mk_meta m = sample_meta(), d;
	m.version = MK_FORMAT_VERSION + 1;
	pg_meta_encode(buf, 4096, &m, NULL);
	ck_assert_int_eq(pg_meta_decode(buf, sizeof(buf), &d),
			 MAPKV_VERSION_MISMATCH);
}
END_TEST

START_TEST(test_meta_invalid_fields_are_corrupt)
{
	uint8_t buf[4096];
	mk_meta d;
	mk_meta m = sample_meta();
	m.page_size = 3000;
	pg_meta_encode(buf, 4096, &m, NULL);
	ck_assert_int_eq(pg_meta_decode(buf, sizeof(buf), &d), MAPKV_CORRUPT);
	m = sample_meta();
	m.trees[0].root = 5000; /* past last_pgno */
	pg_meta_encode(buf, 4096, &m, NULL);
	ck_assert_int_eq(pg_meta_decode(buf, sizeof(buf), &d), MAPKV_CORRUPT);
	m = sample_meta();
	m.trees[1].depth = 2; /* depth without a root */
	pg_meta_encode(buf, 4096, &m, NULL);
	ck_assert_int_eq(pg_meta_decode(buf, sizeof(buf), &d), MAPKV_CORRUPT);
	m = sample_meta();
	m.last_pgno = 1;
	pg_meta_encode(buf, 4096, &m, NULL);
	ck_assert_int_eq(pg_meta_decode(buf, sizeof(buf), &d), MAPKV_CORRUPT);
}
END_TEST

START_TEST(test_page_init_and_check)
{
	uint8_t p[4096];
	pg_init(p, 42, MK_P_LEAF, 4096);
	ck_assert_uint_eq(pg_pgno(p), 42);
	ck_assert_uint_eq(pg_flags(p), MK_P_LEAF);
	ck_assert_uint_eq(pg_nkeys(p), 0);
	ck_assert_uint_eq(pg_lower(p), MK_PAGE_HDR);
	ck_assert_uint_eq(pg_upper(p), 4096);
	ck_assert_uint_eq(pg_free(p), 4096 - MK_PAGE_HDR);
	ck_assert_int_eq(pg_check(p, 4096), 0);
	ck_assert(pg_check_hdr(p, 42, MK_P_LEAF, 4096));
	ck_assert(!pg_check_hdr(p, 43, MK_P_LEAF, 4096));
	ck_assert(!pg_check_hdr(p, 42, MK_P_BRANCH, 4096));
	/* A hand-made leaf node: flags, ksize, vsize, key, value. */
	uint8_t node[16] = {0,   0,   3,   0,   5,   0,   0,   0,
			    'a', 'b', 'c', 'h', 'e', 'l', 'l', 'o'};
	pg_st16(p + 10, 4096 - 16);
	memcpy(p + 4096 - 16, node, 16);
	pg_st16(p + 6, 1);
	pg_st16(p + 8, MK_PAGE_HDR + 2);
	pg_st16(p + MK_PAGE_HDR, 4096 - 16);
	ck_assert_int_eq(pg_check(p, 4096), 0);
	const uint8_t *n = pg_node(p, 0);
	ck_assert_uint_eq(nd_leaf_ksize(n), 3);
	ck_assert_uint_eq(nd_leaf_vsize(n), 5);
	ck_assert(memcmp(nd_leaf_val(n), "hello", 5) == 0);
	ck_assert_uint_eq(nd_leaf_size(n), 16);
	/* A value claimed larger than the page is damage. */
	pg_st32(p + 4096 - 16 + 4, 5000);
	ck_assert_int_eq(pg_check(p, 4096), MAPKV_CORRUPT);
	pg_st32(p + 4096 - 16 + 4, 5);
	/* A slot pointing outside the heap is damage. */
	pg_st16(p + MK_PAGE_HDR, 4095);
	ck_assert_int_eq(pg_check(p, 4096), MAPKV_CORRUPT);
}
END_TEST

/* Add a leaf node (key @k, @vs value bytes of 'v') at heap offset @off
 * as the page's last node; the header's upper follows the lowest node. */
static void put_leaf_node(uint8_t *p, unsigned off, const char *k, unsigned ks,
			  unsigned vs)
{
	unsigned n = pg_nkeys(p);
	p[off] = 0;
	p[off + 1] = 0;
	pg_st16(p + off + 2, (uint16_t)ks);
	pg_st32(p + off + 4, vs);
	memcpy(p + off + MK_LEAF_HDR, k, ks);
	memset(p + off + MK_LEAF_HDR + ks, 'v', vs);
	pg_st16(p + MK_PAGE_HDR + 2 * n, (uint16_t)off);
	pg_st16(p + 6, (uint16_t)(n + 1));
	pg_st16(p + 8, (uint16_t)(MK_PAGE_HDR + 2 * (n + 1)));
	if (off < pg_upper(p))
		pg_st16(p + 10, (uint16_t)off);
}

/* Issue 11, bug 5: pg_check is what lets a writer move nodes by their
 * recorded sizes, so it refuses every page where that would go wrong:
 * nodes sharing bytes (then nkeys is not bounded by what fits, and the
 * split arrays overflowed), unknown node flags, keys over
 * MAPKV_MAX_KEY_SIZE, nodes outside the heap. */
START_TEST(test_page_check_refuses_shared_bytes_bad_flags_and_long_keys)
{
	static uint8_t p[MK_MAX_PAGE];
	for (unsigned ps = MK_MIN_PAGE; ps <= MK_MAX_PAGE; ps *= 2) {
		/* Two nodes of 8 + 1 + 20 bytes, side by side: valid. */
		pg_init(p, 7, MK_P_LEAF, ps);
		put_leaf_node(p, ps - 29, "a", 1, 20);
		put_leaf_node(p, ps - 58, "b", 1, 20);
		ck_assert_int_eq(pg_check(p, ps), 0);
		/* The second moved one byte into the first. */
		pg_init(p, 7, MK_P_LEAF, ps);
		put_leaf_node(p, ps - 29, "a", 1, 20);
		put_leaf_node(p, ps - 57, "b", 1, 20);
		ck_assert_int_eq(pg_check(p, ps), MAPKV_CORRUPT);
		/* Entirely inside the first one's value. */
		pg_init(p, 7, MK_P_LEAF, ps);
		put_leaf_node(p, ps - 100, "a", 1, 80);
		put_leaf_node(p, ps - 60, "b", 1, 5);
		ck_assert_int_eq(pg_check(p, ps), MAPKV_CORRUPT);
		/* The first inside the second. */
		pg_init(p, 7, MK_P_LEAF, ps);
		put_leaf_node(p, ps - 60, "a", 1, 5);
		put_leaf_node(p, ps - 100, "b", 1, 80);
		ck_assert_int_eq(pg_check(p, ps), MAPKV_CORRUPT);
		/* The most nodes a page holds, side by side: valid. */
		pg_init(p, 7, MK_P_LEAF, ps);
		unsigned n = (ps - MK_PAGE_HDR) / (2 + MK_LEAF_HDR + 2);
		for (unsigned i = 0; i < n; i++) {
			char k[2] = {(char)(1 + i / 255), (char)(1 + i % 255)};
			put_leaf_node(p, ps - (i + 1) * 10, k, 2, 0);
		}
		ck_assert_uint_le(pg_lower(p), pg_upper(p));
		ck_assert_int_eq(pg_check(p, ps), 0);
		ck_assert_uint_le(pg_nkeys(p), pg_max_nodes(ps));
		/* Unknown node flags. */
		pg_init(p, 7, MK_P_LEAF, ps);
		put_leaf_node(p, ps - 29, "a", 1, 20);
		p[ps - 29] = 0x80;
		ck_assert_int_eq(pg_check(p, ps), MAPKV_CORRUPT);
		p[ps - 29] = MK_N_BIG; /* value: a 4-byte page number */
		ck_assert_int_eq(pg_check(p, ps), 0);
		/* Keys of MAPKV_MAX_KEY_SIZE bytes, and one more. */
		static char key[MAPKV_MAX_KEY_SIZE + 1];
		memset(key, 'k', sizeof(key));
		pg_init(p, 7, MK_P_LEAF, ps);
		put_leaf_node(p, ps - 1100, key, MAPKV_MAX_KEY_SIZE, 10);
		ck_assert_int_eq(pg_check(p, ps), 0);
		pg_init(p, 7, MK_P_LEAF, ps);
		put_leaf_node(p, ps - 1100, key, MAPKV_MAX_KEY_SIZE + 1, 10);
		ck_assert_int_eq(pg_check(p, ps), MAPKV_CORRUPT);
		/* A node below upper. */
		pg_init(p, 7, MK_P_LEAF, ps);
		put_leaf_node(p, ps - 29, "a", 1, 20);
		pg_st16(p + 10, (uint16_t)(ps - 20));
		ck_assert_int_eq(pg_check(p, ps), MAPKV_CORRUPT);
	}
	/* The split arrays (psize / 8 + 2 entries, env.c) hold every valid
	 * page's nodes and one more. */
	for (unsigned ps = MK_MIN_PAGE; ps <= MK_MAX_PAGE; ps *= 2)
		ck_assert_uint_le(pg_max_nodes(ps) + 1, ps / 8 + 2);
}
END_TEST

START_TEST(test_key_order_is_memcmp_then_length)
{
	ck_assert_int_lt(mk_cmp("a", 1, "b", 1), 0);
	ck_assert_int_lt(mk_cmp("ab", 2, "abc", 3), 0);
	ck_assert_int_gt(mk_cmp("abc", 3, "ab", 2), 0);
	ck_assert_int_eq(mk_cmp("abc", 3, "abc", 3), 0);
	ck_assert_int_gt(mk_cmp("\xff", 1, "\x01\x02", 2), 0);
	ck_assert_uint_eq(pg_node_max(4096), 2038);
	ck_assert_uint_eq(pg_ov_pages(4096, 4080), 1);
	ck_assert_uint_eq(pg_ov_pages(4096, 4081), 2);
}
END_TEST

/* Rewrite both meta pages of a closed database with another version. */
static void set_version(const char *path, uint32_t version)
{
	int fd = open(path, O_RDWR);
	ck_assert_int_ge(fd, 0);
	for (int i = 0; i < 2; i++) {
		uint8_t buf[4096];
		ck_assert_int_eq(pread(fd, buf, 4096, i * 4096), 4096);
		ck_assert_uint_eq(pg_ld32(buf), MK_MAGIC);
		pg_st32(buf + 4, version);
		pg_st32(buf + MK_META_SIZE, ck_crc32c(0, buf, MK_META_SIZE));
		ck_assert_int_eq(pwrite(fd, buf, 4096, i * 4096), 4096);
	}
	close(fd);
}

START_TEST(test_open_other_format_version_gives_version_mismatch)
{
	const char *path = tu_path("v.db");
	mapkv_env *env;
	ck_assert_int_eq(mapkv_open(&env, path, NULL), 0);
	put1(env, "k", "v");
	mapkv_close(env);
	set_version(path, MK_FORMAT_VERSION + 1);
	ck_assert_int_eq(mapkv_open(&env, path, NULL), MAPKV_VERSION_MISMATCH);
	ck_assert_ptr_null(env);
	set_version(path, MK_FORMAT_VERSION);
	ck_assert_int_eq(mapkv_open(&env, path, NULL), 0);
	mapkv_close(env);
}
END_TEST

/* ---- a test OS layer over the default one ---- */

static os_vfs base_copy;
static os_vfs test_vfs;
static size_t fake_gran;
static int fail_write_at = -1; /* fail the Nth write (0-based) */
static size_t torn_bytes;      /* bytes written before that failure */
static int nwrites;

static size_t t_gran(os_vfs *v)
{
	(void)v;
	return fake_gran ? fake_gran : base_copy.map_granularity(&base_copy);
}

static int t_write(os_file *f, const os_iov *iov, int cnt, uint64_t off)
{
	if (nwrites++ == fail_write_at) {
		/* Write a torn prefix, then fail as a disk would. */
		size_t left = torn_bytes;
		for (int i = 0; i < cnt && left; i++) {
			size_t n = iov[i].len < left ? iov[i].len : left;
			os_iov one = {iov[i].base, n};
			ck_assert_int_eq(base_copy.write(f, &one, 1, off), 0);
			off += n;
			left -= n;
		}
		errno = EIO;
		return MAPKV_IO;
	}
	return base_copy.write(f, iov, cnt, off);
}

static int t_write_sync(os_file *f, const os_iov *iov, int cnt, uint64_t off)
{
	int rc = t_write(f, iov, cnt, off);
	return rc ? rc : base_copy.sync(f);
}

static int nresize, nextend;

static int t_resize(os_file *f, uint64_t size)
{
	nresize++;
	return base_copy.resize(f, size);
}

static int t_map_extend(os_file *f, void *base, uint64_t old_len,
			uint64_t new_len)
{
	nextend++;
	return base_copy.map_extend(f, base, old_len, new_len);
}

static void setup_vfs(void)
{
	base_copy = *os_default_vfs();
	test_vfs = base_copy;
	test_vfs.map_granularity = t_gran;
	test_vfs.write = t_write;
	test_vfs.write_sync = t_write_sync;
	test_vfs.resize = t_resize;
	test_vfs.map_extend = t_map_extend;
	nresize = nextend = 0;
	fake_gran = 0;
	fail_write_at = -1;
	torn_bytes = 0;
	nwrites = 0;
}

START_TEST(test_file_with_larger_page_size_opens_and_reads)
{
	const char *path = tu_path("p8k.db");
	mapkv_env *env;
	setup_vfs();
	fake_gran = 8192; /* as on a system with 8 KiB pages */
	ck_assert_int_eq(env_open_vfs(&env, path, NULL, &test_vfs), 0);
	mapkv_envinfo info;
	ck_assert_int_eq(mapkv_env_info(env, &info), 0);
	ck_assert_uint_eq(info.page_size, 8192);
	mapkv_txn *txn;
	ck_assert_int_eq(mapkv_txn_begin(env, 0, &txn), 0);
	char k[32], v[200];
	for (int i = 0; i < 5000; i++) {
		snprintf(k, sizeof(k), "key%06d", i);
		memset(v, 'a' + i % 26, sizeof(v));
		mapkv_val kv = {k, strlen(k)}, vv = {v, sizeof(v)};
		ck_assert_int_eq(mapkv_put(txn, 0, &kv, &vv, 0), 0);
	}
	ck_assert_int_eq(mapkv_txn_commit(txn), 0);
	mapkv_close(env);

	/* Reopen with the real OS page size: the file's own size wins. */
	ck_assert_int_eq(mapkv_open(&env, path, NULL), 0);
	ck_assert_int_eq(mapkv_env_info(env, &info), 0);
	ck_assert_uint_eq(info.page_size, 8192);
	ck_assert_int_eq(mapkv_txn_begin(env, MAPKV_RDONLY, &txn), 0);
	for (int i = 0; i < 5000; i++) {
		snprintf(k, sizeof(k), "key%06d", i);
		mapkv_val kv = {k, strlen(k)}, vv;
		ck_assert_int_eq(mapkv_get(txn, 0, &kv, &vv), 0);
		ck_assert_uint_eq(vv.size, 200);
		ck_assert_uint_eq(((const char *)vv.data)[199], 'a' + i % 26);
	}
	mapkv_txn_abort(txn);
	/* And it can still be written. */
	put1(env, "more", "data");
	mapkv_close(env);
}
END_TEST

/* An I/O error (after a torn prefix of any length) while mapkv_open writes
 * the first meta pages leaves a file that opens again, empty. */
START_TEST(test_failed_creation_leaves_a_file_that_opens_empty)
{
	static const size_t torn[] = {0, 100, 512, 4096, 4096 + 512, 8191};
	for (size_t t = 0; t < sizeof(torn) / sizeof(torn[0]); t++) {
		char name[32];
		snprintf(name, sizeof(name), "c%zu.db", t);
		const char *path = tu_path(name);
		mapkv_env *env;
		setup_vfs();
		fail_write_at = 0;
		torn_bytes = torn[t];
		ck_assert_int_eq(env_open_vfs(&env, path, NULL, &test_vfs),
				 MAPKV_IO);
		struct stat st;
		ck_assert_int_eq(stat(path, &st), 0);
		ck_assert_int_eq(mapkv_open(&env, path, NULL), 0);
		mapkv_txn *txn;
		ck_assert_int_eq(mapkv_txn_begin(env, MAPKV_RDONLY, &txn), 0);
		mapkv_stat_info si;
		ck_assert_int_eq(mapkv_stat(txn, 0, &si), 0);
		ck_assert_uint_eq(si.entries, 0);
		mapkv_txn_abort(txn);
		put1(env, "after", "crash");
		mapkv_close(env);
		ck_assert_int_eq(mapkv_open(&env, path, NULL), 0);
		ck_assert_int_eq(mapkv_txn_begin(env, MAPKV_RDONLY, &txn), 0);
		mapkv_val k = {"after", 5}, v;
		ck_assert_int_eq(mapkv_get(txn, 0, &k, &v), 0);
		mapkv_txn_abort(txn);
		mapkv_close(env);
	}
}
END_TEST

/* A failed write of data pages at commit fails the commit and the file
 * keeps the previous commit; the environment stays usable. */
START_TEST(test_failed_commit_write_keeps_last_commit)
{
	const char *path = tu_path("w.db");
	mapkv_env *env;
	setup_vfs();
	ck_assert_int_eq(env_open_vfs(&env, path, NULL, &test_vfs), 0);
	put1(env, "a", "1");
	mapkv_txn *txn;
	ck_assert_int_eq(mapkv_txn_begin(env, 0, &txn), 0);
	mapkv_val k = {"b", 1}, v = {"2", 1};
	ck_assert_int_eq(mapkv_put(txn, 0, &k, &v, 0), 0);
	fail_write_at = nwrites; /* the data pages of this commit */
	torn_bytes = 100;
	ck_assert_int_eq(mapkv_txn_commit(txn), MAPKV_IO);
	ck_assert_int_eq(mapkv_txn_begin(env, MAPKV_RDONLY, &txn), 0);
	mapkv_val g;
	ck_assert_int_eq(mapkv_get(txn, 0, &k, &g), MAPKV_NOTFOUND);
	mapkv_val ka = {"a", 1};
	ck_assert_int_eq(mapkv_get(txn, 0, &ka, &g), 0);
	mapkv_txn_abort(txn);
	put1(env, "c", "3");
	mapkv_close(env);
	ck_assert_int_eq(mapkv_open(&env, path, NULL), 0);
	ck_assert_int_eq(mapkv_txn_begin(env, MAPKV_RDONLY, &txn), 0);
	ck_assert_int_eq(mapkv_get(txn, 0, &k, &g), MAPKV_NOTFOUND);
	mapkv_val kc = {"c", 1};
	ck_assert_int_eq(mapkv_get(txn, 0, &kc, &g), 0);
	mapkv_txn_abort(txn);
	mapkv_close(env);
}
END_TEST

/* A failed meta write puts the environment in the panic state: writes are
 * refused until reopened, and the reopened file holds one of the last two
 * commits. */
START_TEST(test_failed_meta_write_panics_until_reopen)
{
	const char *path = tu_path("m.db");
	mapkv_env *env;
	setup_vfs();
	ck_assert_int_eq(env_open_vfs(&env, path, NULL, &test_vfs), 0);
	put1(env, "a", "1");
	mapkv_txn *txn;
	ck_assert_int_eq(mapkv_txn_begin(env, 0, &txn), 0);
	mapkv_val k = {"b", 1}, v = {"2", 1};
	ck_assert_int_eq(mapkv_put(txn, 0, &k, &v, 0), 0);
	fail_write_at = nwrites + 1; /* data pages pass, the meta fails */
	torn_bytes = 0;
	ck_assert_int_eq(mapkv_txn_commit(txn), MAPKV_PANIC);
	ck_assert_int_eq(mapkv_txn_begin(env, 0, &txn), MAPKV_PANIC);
	mapkv_close(env);
	ck_assert_int_eq(mapkv_open(&env, path, NULL), 0);
	ck_assert_int_eq(mapkv_txn_begin(env, MAPKV_RDONLY, &txn), 0);
	mapkv_val ka = {"a", 1}, g;
	ck_assert_int_eq(mapkv_get(txn, 0, &ka, &g), 0);
	ck_assert_int_eq(mapkv_get(txn, 0, &k, &g), MAPKV_NOTFOUND);
	mapkv_txn_abort(txn);
	mapkv_close(env);
}
END_TEST

static mapkv_val held;

static int get_first(mapkv_txn *txn, void *ctx, char *err, size_t len)
{
	mapkv_val k = {"first", 5};
	int rc = mapkv_get(txn, 0, &k, (mapkv_val *)ctx);
	if (rc)
		snprintf(err, len, "get: %s", mapkv_strerror(rc));
	return rc;
}

/* The file grows in steps that scale with its size, each mapped in place:
 * a bulk load of ~40 MiB costs a few dozen resize calls, not one per page,
 * and the map's base address never moves (pointers stay valid). */
START_TEST(test_growth_is_amortised_and_keeps_the_base_address)
{
	const char *path = tu_path("grow.db");
	mapkv_env *env;
	setup_vfs();
	ck_assert_int_eq(env_open_vfs(&env, path, NULL, &test_vfs), 0);
	nresize = nextend = 0; /* the database file from here on */
	mapkv_txn *txn = tu_begin(env, 0);
	tu_put_str(txn, 0, "first", "value");
	tu_commit(txn);
	const uint8_t *base = env->map;
	/* A reader holds a pointer into the map across all the growth. */
	tu_reader *rd = tu_reader_start(env);
	tu_reader_call(rd, get_first, (void *)&held);
	char k[32], v[100];
	memset(v, 'x', sizeof(v));
	uint64_t pages = 0;
	for (int t = 0; t < 100; t++) {
		txn = tu_begin(env, 0);
		for (int i = 0; i < 3000; i++) {
			snprintf(k, sizeof(k), "key%08d", t * 3000 + i);
			mapkv_val kv = {k, strlen(k)}, vv = {v, sizeof(v)};
			ck_assert_int_eq(mapkv_put(txn, 0, &kv, &vv, 0), 0);
		}
		tu_commit(txn);
	}
	mapkv_envinfo info;
	ck_assert_int_eq(mapkv_env_info(env, &info), 0);
	pages = info.pages_used;
	ck_assert_uint_gt(pages, 9000); /* ~40 MiB were written */
	/* Steps of an eighth of the file (>= 256 KiB): about
	 * log(40 MiB / 256 KiB) / log(9/8) + 1 = 44 of them. */
	ck_assert_int_le(nresize, 50);
	ck_assert_int_ge(nresize, 5);
	ck_assert_int_eq(nextend, nresize);
	/* The file holds at most one step beyond the pages in use. */
	ck_assert_uint_le(info.file_size, pages * info.page_size +
						  pages * info.page_size / 8 +
						  4096);
	ck_assert_ptr_eq(env->map, base);
	ck_assert(held.data != NULL && memcmp(held.data, "value", 5) == 0);
	tu_reader_stop(rd);
	mapkv_close(env);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("page");
	TCase *tc = tu_tcase(s, "format", 120);
	tcase_add_test(tc, test_meta_round_trip_and_little_endian_layout);
	tcase_add_test(tc, test_meta_any_flipped_bit_is_rejected);
	tcase_add_test(tc, test_meta_other_version_is_version_mismatch);
	tcase_add_test(tc, test_meta_invalid_fields_are_corrupt);
	tcase_add_test(tc, test_page_init_and_check);
	tcase_add_test(
		tc,
		test_page_check_refuses_shared_bytes_bad_flags_and_long_keys);
	tcase_add_test(tc, test_key_order_is_memcmp_then_length);
	tcase_add_test(tc,
		       test_open_other_format_version_gives_version_mismatch);
	tcase_add_test(tc, test_file_with_larger_page_size_opens_and_reads);
	tcase_add_test(tc, test_failed_creation_leaves_a_file_that_opens_empty);
	tcase_add_test(tc, test_failed_commit_write_keeps_last_commit);
	tcase_add_test(tc, test_failed_meta_write_panics_until_reopen);
	tcase_add_test(tc, test_growth_is_amortised_and_keeps_the_base_address);
	return tu_run_suite(s);
}
