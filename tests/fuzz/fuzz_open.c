/*
 * fuzz_open.c: libFuzzer target: any bytes as a database file.
 *
 * Read pass: the file is opened read-only and read every way (both cursor
 * directions, a seek, the integrity check, env_info). Whatever the bytes,
 * every call must return a code, never crash, hang or read outside the
 * map (the sanitizers watch the last).
 *
 * Write pass: the file is opened writable and a short workload runs on it
 * (puts of several sizes, deletes that empty and merge leaves, a named tree
 * dropped, two commits). Every call must return a code, and no key that
 * was readable before (found by a scan and by mapkv_get with the same
 * value) may be lost or changed by a commit that succeeded, unless the
 * workload deleted or rewrote it. The two kinds of damage that
 * doc/reliability.md names as beyond a writer's checks (a page listed free
 * while a tree still reaches it, a page reachable twice: what mapkv_check
 * reports as "both used and free" and "reachable more than once") lift
 * that last rule: with them a writer may lose data, and `mapkv check`
 * is the remedy.
 *
 * Built two ways: with clang -fsanitize=fuzzer by `make fuzz`, and with
 * replay.c as an ordinary program that `make check` runs over the corpus
 * in tests/fuzz/corpus/open (seeds and every input that once failed).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mapkv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A finding: say what and stop (libFuzzer keeps the input). */
static void fail(const char *what, const void *key, size_t klen, int rc)
{
	fprintf(stderr, "fuzz_open: %s (key of %zu bytes", what, klen);
	const unsigned char *k = key;
	for (size_t i = 0; i < klen && i < 32; i++)
		fprintf(stderr, "%s%02x", i ? "" : " ", k[i]);
	fprintf(stderr, "): %d %s\n", rc, mapkv_strerror(rc));
	abort();
}

static void read_pass(const char *path)
{
	mapkv_env *env;
	mapkv_options o = {64u << 20, 0, MAPKV_RDONLY, 0, 0};
	if (mapkv_open(&env, path, &o) != 0)
		return;
	mapkv_txn *t;
	if (mapkv_txn_begin(env, MAPKV_RDONLY, &t) == 0) {
		mapkv_cursor *c;
		mapkv_val k, v;
		if (mapkv_cursor_open(t, 0, &c) == 0) {
			/* Bounded: a damaged tree may not end. */
			for (int n = 0;
			     n < 100000 &&
			     mapkv_cursor_get(c, &k, &v, MAPKV_NEXT) == 0;
			     n++)
				if (v.size) /* touch the value's end */
					(void)((volatile const uint8_t *)
						       v.data)[v.size - 1];
			for (int n = 0;
			     n < 100000 &&
			     mapkv_cursor_get(c, &k, &v, MAPKV_PREV) == 0;
			     n++)
				;
			mapkv_val sk = {"m", 1};
			mapkv_cursor_get(c, &sk, &v, MAPKV_SEEK);
			mapkv_cursor_close(c);
		}
		uint64_t problems;
		mapkv_check(t, NULL, NULL, &problems);
		mapkv_txn_abort(t);
	}
	mapkv_envinfo info;
	mapkv_env_info(env, &info);
	mapkv_close(env);
}

/* ---- write pass ---- */

/* A pair that was readable before the workload. */
typedef struct pair {
	unsigned char *k, *v;
	size_t klen, vlen;
	int gone; /* deleted or rewritten by a commit that succeeded */
} pair;

#define MAX_PAIRS 2000
#define MAX_BYTES (4u << 20)

typedef struct state {
	pair p[MAX_PAIRS];
	int n;
	size_t bytes;
	int limits; /* the file has damage no writer is required to see */
	char named[256];
} state;

static int on_problem(void *ctx, uint64_t pgno, const char *problem)
{
	(void)pgno;
	state *s = ctx;
	if (strstr(problem, "both used and free") ||
	    strstr(problem, "more than once"))
		s->limits = 1;
	return 0;
}

static int first_name(void *ctx, const char *name)
{
	state *s = ctx;
	if (!s->named[0])
		snprintf(s->named, sizeof(s->named), "%s", name);
	return 0;
}

static void *dup_bytes(const void *p, size_t n)
{
	unsigned char *d = malloc(n ? n : 1);
	if (!d)
		abort();
	if (n)
		memcpy(d, p, n);
	return d;
}

/* The pairs a scan returns that mapkv_get finds with the same value. */
static void snapshot(mapkv_env *env, state *s)
{
	mapkv_txn *t;
	if (mapkv_txn_begin(env, MAPKV_RDONLY, &t) != 0)
		return;
	uint64_t problems;
	mapkv_check(t, on_problem, s, &problems);
	mapkv_dbi_list(t, first_name, s);
	mapkv_cursor *c;
	if (mapkv_cursor_open(t, 0, &c) == 0) {
		mapkv_val k, v, g;
		for (int steps = 0;
		     steps < 100000 && s->n < MAX_PAIRS &&
		     mapkv_cursor_get(c, &k, &v, MAPKV_NEXT) == 0;
		     steps++) {
			if (s->bytes + k.size + v.size > MAX_BYTES)
				break;
			if (k.size >= 3 && memcmp(k.data, "fz-", 3) == 0)
				continue; /* a key the workload writes */
			if (mapkv_get(t, 0, &k, &g) != 0 || g.size != v.size ||
			    memcmp(g.data, v.data, v.size) != 0)
				continue;
			pair *p = &s->p[s->n++];
			p->k = dup_bytes(k.data, k.size);
			p->klen = k.size;
			p->v = dup_bytes(v.data, v.size);
			p->vlen = v.size;
			p->gone = 0;
			s->bytes += k.size + v.size;
		}
		mapkv_cursor_close(c);
	}
	mapkv_txn_abort(t);
}

/* New pairs the workload writes: sizes around the thresholds of a 4 KiB
 * page (inline, half a page, overflow of one run and of several). */
static const size_t new_sizes[] = {0, 100, 2000, 2030, 4100, 20000};
#define NNEW (sizeof(new_sizes) / sizeof(new_sizes[0]))

static void new_value(unsigned char *buf, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = (unsigned char)(seed * 31 + i * 7);
}

/* Mark every pair with the key of pair @i gone (a damaged tree may hold
 * a key twice). */
static void mark_gone(state *s, int i)
{
	for (int j = 0; j < s->n; j++)
		if (s->p[j].klen == s->p[i].klen &&
		    memcmp(s->p[j].k, s->p[i].k, s->p[i].klen) == 0)
			s->p[j].gone = 1;
}

/* Commit 1: the new pairs, deletes of the first half of the readable
 * pairs (up to 300, which empties and merges leaves), a named tree
 * dropped. Commit 2: more small pairs and one readable pair rewritten.
 * Returns a bit for each commit that succeeded. */
static unsigned workload(mapkv_env *env, state *s, unsigned char *buf)
{
	unsigned ok = 0;
	mapkv_txn *t;
	int rc;
	if (mapkv_txn_begin(env, 0, &t) != 0)
		return 0;
	rc = 0;
	for (unsigned i = 0; i < NNEW && !rc; i++) {
		char k[16];
		snprintf(k, sizeof(k), "fz-a%u", i);
		new_value(buf, new_sizes[i], i);
		mapkv_val key = {k, strlen(k)}, val = {buf, new_sizes[i]};
		rc = mapkv_put(t, 0, &key, &val, 0);
	}
	int ndel = s->n / 2 < 300 ? s->n / 2 : 300;
	for (int i = 0; i < ndel && (rc == 0 || rc == MAPKV_NOTFOUND); i++) {
		mapkv_val key = {s->p[i].k, s->p[i].klen};
		rc = mapkv_del(t, 0, &key);
	}
	if (rc == MAPKV_NOTFOUND)
		rc = 0; /* a key the scan saw twice */
	if (!rc && s->named[0]) {
		mapkv_dbi d;
		rc = mapkv_dbi_open(t, s->named, 0, &d);
		if (!rc)
			rc = mapkv_dbi_drop(t, d, 1);
		else if (rc == MAPKV_NOTFOUND || rc == MAPKV_INVALID)
			rc = 0; /* a name the catalog holds but cannot open */
	}
	if (rc)
		mapkv_txn_abort(t);
	else if (mapkv_txn_commit(t) == 0) {
		ok |= 1;
		for (int i = 0; i < ndel; i++)
			mark_gone(s, i);
	}

	if (mapkv_txn_begin(env, 0, &t) != 0)
		return ok;
	rc = 0;
	for (unsigned i = 0; i < 50 && !rc; i++) {
		char k[16];
		snprintf(k, sizeof(k), "fz-b%03u", i);
		new_value(buf, 100, i + 100);
		mapkv_val key = {k, strlen(k)}, val = {buf, 100};
		rc = mapkv_put(t, 0, &key, &val, 0);
	}
	int last = s->n - 1;
	if (!rc && last >= ndel) {
		new_value(buf, 300, 999);
		mapkv_val key = {s->p[last].k, s->p[last].klen},
			  val = {buf, 300};
		rc = mapkv_put(t, 0, &key, &val, 0);
	}
	if (rc)
		mapkv_txn_abort(t);
	else if (mapkv_txn_commit(t) == 0) {
		ok |= 2;
		if (last >= ndel)
			mark_gone(s, last);
	}
	return ok;
}

/* After the workload: what it wrote in the commits that succeeded is
 * there, and every readable pair it did not touch is unchanged. */
static void verify(mapkv_env *env, const state *s, unsigned ok,
		   unsigned char *buf)
{
	mapkv_txn *t;
	int rc = mapkv_txn_begin(env, MAPKV_RDONLY, &t);
	if (rc) {
		if (ok && !s->limits)
			fail("no read transaction after commits", NULL, 0, rc);
		return;
	}
	mapkv_val key, v;
	if (!s->limits) {
		for (int i = 0; i < s->n; i++) {
			const pair *p = &s->p[i];
			if (p->gone)
				continue;
			key.data = p->k;
			key.size = p->klen;
			rc = mapkv_get(t, 0, &key, &v);
			if (rc)
				fail("a readable pair was lost", p->k, p->klen,
				     rc);
			if (v.size != p->vlen || memcmp(v.data, p->v, v.size))
				fail("a readable pair changed", p->k, p->klen,
				     0);
		}
	}
	for (unsigned i = 0; (ok & 1) && !s->limits && i < NNEW; i++) {
		char k[16];
		snprintf(k, sizeof(k), "fz-a%u", i);
		key.data = k;
		key.size = strlen(k);
		rc = mapkv_get(t, 0, &key, &v);
		new_value(buf, new_sizes[i], i);
		if (rc)
			fail("a committed pair was lost", k, key.size, rc);
		if (v.size != new_sizes[i] || memcmp(v.data, buf, v.size))
			fail("a committed pair reads back wrong", k, key.size,
			     0);
	}
	for (unsigned i = 0; (ok & 2) && !s->limits && i < 50; i++) {
		char k[16];
		snprintf(k, sizeof(k), "fz-b%03u", i);
		key.data = k;
		key.size = strlen(k);
		rc = mapkv_get(t, 0, &key, &v);
		new_value(buf, 100, i + 100);
		if (rc)
			fail("a committed pair was lost", k, key.size, rc);
		if (v.size != 100 || memcmp(v.data, buf, 100))
			fail("a committed pair reads back wrong", k, key.size,
			     0);
	}
	mapkv_txn_abort(t);
}

static void write_pass(const char *path)
{
	mapkv_env *env;
	mapkv_options o = {64u << 20, 0, MAPKV_NOSYNC, 0, 0};
	if (mapkv_open(&env, path, &o) != 0)
		return;
	static state s;
	memset(&s, 0, sizeof(s));
	unsigned char *buf = malloc(20000);
	if (!buf)
		abort();
	snapshot(env, &s);
	unsigned ok = workload(env, &s, buf);
	verify(env, &s, ok, buf);
	mapkv_close(env);
	/* And from the file, as the next process sees it. */
	if (ok && mapkv_open(&env, path, &o) == 0) {
		verify(env, &s, ok, buf);
		mapkv_close(env);
	}
	for (int i = 0; i < s.n; i++) {
		free(s.p[i].k);
		free(s.p[i].v);
	}
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[512];
	if (!path[0]) {
		const char *dir = getenv("TMPDIR");
		snprintf(path, sizeof(path), "%s/mapkv-fuzz-%d.db",
			 dir && *dir ? dir : "/tmp", (int)getpid());
	}
	char lock[600];
	snprintf(lock, sizeof(lock), "%s-lock", path);
	unlink(path);
	unlink(lock);
	FILE *f = fopen(path, "wb");
	if (!f)
		abort(); /* the harness itself cannot work */
	if (size && fwrite(data, 1, size, f) != size)
		abort();
	fclose(f);

	read_pass(path);
	write_pass(path);

	unlink(path);
	unlink(lock);
	return 0;
}
