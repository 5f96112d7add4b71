/*
 * xfile.c: a database written on one platform and read on another.
 *
 * xfile_write() fills a new file with a fixed data set (three trees, small
 * and overflow values, deletes, committed in many transactions so the file
 * grows in many steps); xfile_verify() opens a file read-only and checks
 * that every tree holds exactly that data set and that mapkv_check finds no
 * problem. The Linux build (tests/win/xfile, program) and the Windows test
 * program (tests/win/wintest.c) both link this file, so `make
 * check-windows` writes a file on Linux and verifies it under Wine, and the
 * other way round. Public API only.
 *
 *   xfile write FILE    xfile verify FILE     (with XFILE_MAIN)
 */
#include "xfile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAIN_KEYS 6000u
#define ALPHA_KEYS 3000u
#define GAMMA_KEYS 64u
#define TXNS 12u

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* Value of key @i of tree @t: 0 to 300 bytes, every 97th 5,000 to 20,000
 * (overflow pages), content derived from (t, i). */
static size_t value_of(unsigned t, unsigned i, unsigned char *buf)
{
	uint64_t h = mix((uint64_t)t << 32 | i);
	size_t n =
		(i % 97 == 5) ? 5000 + (size_t)(h % 15000) : (size_t)(h % 301);

	for (size_t k = 0; k < n; k++)
		buf[k] = (unsigned char)(mix(h + k / 8) >> (8 * (k % 8)));
	return n;
}

static size_t key_of(unsigned t, unsigned i, char *buf)
{
	return (size_t)sprintf(buf, "%c%08u", "mag"[t], i);
}

/* Is key @i of tree @t deleted by the last transaction? */
static int deleted(unsigned t, unsigned i)
{
	return t == 1 && i % 7 == 3;
}

static const char *tree_name[3] = {NULL, "alpha", "gamma"};
static const unsigned tree_keys[3] = {MAIN_KEYS, ALPHA_KEYS, GAMMA_KEYS};

#define FAIL(...)                                                              \
	do {                                                                   \
		snprintf(err, errlen, __VA_ARGS__);                            \
		goto out;                                                      \
	} while (0)

int xfile_write(const char *path, char *err, size_t errlen)
{
	mapkv_env *env = NULL;
	mapkv_txn *txn = NULL;
	unsigned char *vbuf = malloc(20000);
	char kbuf[32];
	int rc = -1, r;

	if (!vbuf)
		FAIL("out of memory");
	if ((r = mapkv_open(&env, path, NULL)))
		FAIL("open %s: %s", path, mapkv_strerror(r));
	for (unsigned step = 0; step < TXNS; step++) {
		if ((r = mapkv_txn_begin(env, 0, &txn)))
			FAIL("begin: %s", mapkv_strerror(r));
		for (unsigned t = 0; t < 3; t++) {
			mapkv_dbi dbi = 0;

			if (tree_name[t] &&
			    (r = mapkv_dbi_open(txn, tree_name[t], MAPKV_CREATE,
						&dbi)))
				FAIL("dbi_open: %s", mapkv_strerror(r));
			for (unsigned i = step; i < tree_keys[t]; i += TXNS) {
				mapkv_val k = {kbuf, key_of(t, i, kbuf)};
				mapkv_val v = {vbuf, value_of(t, i, vbuf)};

				if ((r = mapkv_put(txn, dbi, &k, &v, 0)))
					FAIL("put: %s", mapkv_strerror(r));
			}
		}
		r = mapkv_txn_commit(txn);
		txn = NULL;
		if (r)
			FAIL("commit: %s", mapkv_strerror(r));
	}
	/* Deletes, so the file has free pages too. */
	if ((r = mapkv_txn_begin(env, 0, &txn)))
		FAIL("begin: %s", mapkv_strerror(r));
	{
		mapkv_dbi dbi;

		if ((r = mapkv_dbi_open(txn, "alpha", 0, &dbi)))
			FAIL("dbi_open: %s", mapkv_strerror(r));
		for (unsigned i = 0; i < ALPHA_KEYS; i++) {
			mapkv_val k = {kbuf, key_of(1, i, kbuf)};

			if (deleted(1, i) && (r = mapkv_del(txn, dbi, &k)))
				FAIL("del: %s", mapkv_strerror(r));
		}
	}
	r = mapkv_txn_commit(txn);
	txn = NULL;
	if (r)
		FAIL("commit: %s", mapkv_strerror(r));
	rc = 0;
out:
	if (txn)
		mapkv_txn_abort(txn);
	if (env)
		mapkv_close(env);
	free(vbuf);
	return rc;
}

static int count_problem(void *ctx, uint64_t pgno, const char *problem)
{
	(void)ctx;
	fprintf(stderr, "xfile: check: page %llu: %s\n",
		(unsigned long long)pgno, problem);
	return 0;
}

int xfile_verify(const char *path, char *err, size_t errlen)
{
	mapkv_options o;
	mapkv_env *env = NULL;
	mapkv_txn *txn = NULL;
	mapkv_cursor *cur = NULL;
	unsigned char *vbuf = malloc(20000);
	char kbuf[32];
	int rc = -1, r;
	uint64_t problems = 0;

	memset(&o, 0, sizeof(o));
	o.flags = MAPKV_RDONLY;
	if (!vbuf)
		FAIL("out of memory");
	if ((r = mapkv_open(&env, path, &o)))
		FAIL("open %s: %s", path, mapkv_strerror(r));
	if ((r = mapkv_txn_begin(env, MAPKV_RDONLY, &txn)))
		FAIL("begin: %s", mapkv_strerror(r));
	for (unsigned t = 0; t < 3; t++) {
		mapkv_dbi dbi = 0;
		mapkv_val k, v;
		unsigned i = 0, seen = 0;

		if (tree_name[t] &&
		    (r = mapkv_dbi_open(txn, tree_name[t], 0, &dbi)))
			FAIL("dbi_open %s: %s", tree_name[t],
			     mapkv_strerror(r));
		if ((r = mapkv_cursor_open(txn, dbi, &cur)))
			FAIL("cursor_open: %s", mapkv_strerror(r));
		while ((r = mapkv_cursor_get(cur, &k, &v, MAPKV_NEXT)) == 0) {
			size_t kn, vn;

			while (i < tree_keys[t] && deleted(t, i))
				i++;
			if (i >= tree_keys[t])
				FAIL("tree %u: more keys than written", t);
			kn = key_of(t, i, kbuf);
			vn = value_of(t, i, vbuf);
			if (k.size != kn || memcmp(k.data, kbuf, kn) != 0)
				FAIL("tree %u: key %u differs", t, i);
			if (v.size != vn || (vn && memcmp(v.data, vbuf, vn)))
				FAIL("tree %u: value of key %u differs", t, i);
			i++;
			seen++;
		}
		if (r != MAPKV_NOTFOUND)
			FAIL("cursor: %s", mapkv_strerror(r));
		while (i < tree_keys[t] && deleted(t, i))
			i++;
		if (i != tree_keys[t])
			FAIL("tree %u: %u keys, expected more", t, seen);
		mapkv_cursor_close(cur);
		cur = NULL;
		/* And by get, the same. */
		{
			char key[32];
			mapkv_val kk = {key, key_of(t, tree_keys[t] / 2, key)};
			r = mapkv_get(txn, dbi, &kk, &v);
			if (deleted(t, tree_keys[t] / 2) ? r != MAPKV_NOTFOUND
							 : r != 0)
				FAIL("get: %s", mapkv_strerror(r));
		}
	}
	if ((r = mapkv_check(txn, count_problem, NULL, &problems)))
		FAIL("mapkv_check: %s (%llu problems)", mapkv_strerror(r),
		     (unsigned long long)problems);
	rc = 0;
out:
	if (cur)
		mapkv_cursor_close(cur);
	if (txn)
		mapkv_txn_abort(txn);
	if (env)
		mapkv_close(env);
	free(vbuf);
	return rc;
}

#ifdef XFILE_MAIN
int main(int argc, char **argv)
{
	char err[512] = "";
	int rc;

	if (argc != 3 ||
	    (strcmp(argv[1], "write") && strcmp(argv[1], "verify"))) {
		fprintf(stderr, "usage: xfile write|verify FILE\n");
		return 2;
	}
	rc = strcmp(argv[1], "write") == 0
		     ? xfile_write(argv[2], err, sizeof(err))
		     : xfile_verify(argv[2], err, sizeof(err));
	if (rc) {
		fprintf(stderr, "xfile %s %s: %s\n", argv[1], argv[2], err);
		return 1;
	}
	printf("xfile %s %s: ok\n", argv[1], argv[2]);
	return 0;
}
#endif
