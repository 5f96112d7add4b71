/*
 * testutil.c: shared helpers of the Check suites (see testutil.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#if defined(__linux__)
#include <linux/magic.h>
#include <sys/vfs.h>
#endif
#ifdef _WIN32
/* The Windows build (MinGW, tests/win): no nftw, mkdtemp, pread. */
#include <dirent.h>
#include <io.h>
#else
#include <ftw.h>
#endif
#ifndef O_BINARY
#define O_BINARY 0 /* Windows: no newline translation */
#endif

#ifdef _WIN32
static char *mkdtemp(char *tmpl)
{
	size_t n = strlen(tmpl);
	static unsigned counter;
	if (n < 6 || strcmp(tmpl + n - 6, "XXXXXX") != 0) {
		errno = EINVAL;
		return NULL;
	}
	for (int tries = 0; tries < 1000; tries++) {
		unsigned v = (unsigned)rand() ^ (counter++ * 2654435761u) ^
			     (unsigned)_getpid();
		for (int i = 0; i < 6; i++) {
			tmpl[n - 6 + i] =
				"abcdefghijklmnopqrstuvwxyz0123456789"[v % 36];
			v /= 36;
		}
		if (mkdir(tmpl) == 0)
			return tmpl;
		if (errno != EEXIST)
			return NULL;
	}
	return NULL;
}

char *tu_strcasestr(const char *hay, const char *needle)
{
	size_t n = strlen(needle);
	for (; *hay; hay++)
		if (strncasecmp(hay, needle, n) == 0)
			return (char *)hay;
	return n == 0 ? (char *)hay : NULL;
}

/* Only the page size is asked for: 4 KiB on every x64 Windows. */
long tu_sysconf(int name)
{
	return name == _SC_PAGESIZE ? 4096 : -1;
}

static ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
	if (lseek(fd, off, SEEK_SET) < 0)
		return -1;
	return read(fd, buf, (unsigned)n);
}

static ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	if (lseek(fd, off, SEEK_SET) < 0)
		return -1;
	return write(fd, buf, (unsigned)n);
}
#endif

/* ---- scale ------------------------------------------------------------ */

int tu_long(void)
{
	const char *s = getenv("MAPKV_TEST_LONG");
	return s && *s && strcmp(s, "0") != 0;
}

uint64_t tu_scale(uint64_t normal, uint64_t lng)
{
	return tu_long() ? lng : normal;
}

/* ---- temp dirs and suites --------------------------------------------- */

/* The root is made per test case in the parent (unchecked fixture) so that
 * it is removed even when a test crashed in its forked child; each test
 * gets its own directory below it (checked fixture, runs in the child). */
static char tu_root[1024];
static char tu_test_dir[1200];
/* The tmpfs twin of tu_root (tu_tmpfs_dir), made on first use. */
static char tu_shm_root[1200];
static char tu_shm_dir[1300];
/* Where tu_dir() and tu_path() point for the rest of a test
 * (tu_on_tmpfs), or NULL: tu_test_dir. */
static const char *tu_dir_override;

static void tu_root_setup(void)
{
	const char *tmp = getenv("TMPDIR");
	if (!tmp || !*tmp)
		tmp = "/tmp";
	snprintf(tu_root, sizeof(tu_root), "%.900s/mapkv-test-XXXXXX", tmp);
	if (!mkdtemp(tu_root)) {
		fprintf(stderr, "mkdtemp(%s): %s\n", tu_root, strerror(errno));
		abort();
	}
	const char *base = strrchr(tu_root, '/');
	snprintf(tu_shm_root, sizeof(tu_shm_root), "/dev/shm/%s",
		 base ? base + 1 : tu_root);
}

static void tu_root_teardown(void)
{
	if (tu_root[0])
		tu_rm_rf(tu_root);
	tu_root[0] = 0;
	if (tu_shm_root[0])
		tu_rm_rf(tu_shm_root);
	tu_shm_root[0] = 0;
}

static void tu_test_setup(void)
{
	snprintf(tu_test_dir, sizeof(tu_test_dir), "%s/t-XXXXXX", tu_root);
	ck_assert_msg(mkdtemp(tu_test_dir) != NULL, "mkdtemp(%s): %s",
		      tu_test_dir, strerror(errno));
}

static void tu_test_teardown(void)
{
	if (tu_test_dir[0])
		tu_rm_rf(tu_test_dir);
	tu_test_dir[0] = 0;
	if (tu_shm_dir[0])
		tu_rm_rf(tu_shm_dir);
	tu_shm_dir[0] = 0;
	tu_dir_override = NULL;
}

TCase *tu_tcase(Suite *s, const char *name, double timeout)
{
	TCase *tc = tcase_create(name);
	tcase_add_unchecked_fixture(tc, tu_root_setup, tu_root_teardown);
	tcase_add_checked_fixture(tc, tu_test_setup, tu_test_teardown);
	tcase_set_timeout(tc, tu_long() ? timeout * 4 : timeout);
	suite_add_tcase(s, tc);
	return tc;
}

int tu_run_suite(Suite *s)
{
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}

const char *tu_dir(void)
{
	return tu_dir_override ? tu_dir_override : tu_test_dir;
}

int tu_on_tmpfs(int on)
{
	if (!on) {
		tu_dir_override = NULL;
		return 1;
	}
	const char *d = tu_tmpfs_dir();
	if (!d)
		return 0;
	tu_dir_override = d;
	return 1;
}

const char *tu_tmpfs_dir(void)
{
#if defined(__linux__)
	struct statfs fs;
	if (tu_shm_dir[0])
		return tu_shm_dir;
	if (!tu_shm_root[0] || statfs("/dev/shm", &fs) != 0 ||
	    fs.f_type != TMPFS_MAGIC)
		return NULL;
	if (mkdir(tu_shm_root, 0700) != 0 && errno != EEXIST)
		return NULL;
	snprintf(tu_shm_dir, sizeof(tu_shm_dir), "%s/t-XXXXXX", tu_shm_root);
	if (!mkdtemp(tu_shm_dir)) {
		tu_shm_dir[0] = 0;
		return NULL;
	}
	return tu_shm_dir;
#else
	return NULL;
#endif
}

const char *tu_path(const char *name)
{
	static char bufs[8][2048];
	static unsigned next;
	char *b = bufs[next++ % 8];
	int n = snprintf(b, 2048, "%s/%.500s", tu_dir(), name);
	ck_assert_msg(n > 0 && n < 2048, "path too long");
	return b;
}

#ifdef _WIN32
int tu_rm_rf(const char *path)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISDIR(st.st_mode))
		return unlink(path) == 0 || errno == ENOENT ? 0 : -1;
	DIR *d = opendir(path);
	int rc = 0;
	if (d) {
		struct dirent *e;
		char sub[2048];
		while ((e = readdir(d)) != NULL) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
			if (tu_rm_rf(sub))
				rc = -1;
		}
		closedir(d);
	}
	if (rmdir(path) != 0 && errno != ENOENT)
		rc = -1;
	return rc;
}
#else
static int tu_rm_one(const char *path, const struct stat *st, int flag,
		     struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP || flag == FTW_D)
		return rmdir(path) == 0 || errno == ENOENT ? 0 : -1;
	return unlink(path) == 0 || errno == ENOENT ? 0 : -1;
}

int tu_rm_rf(const char *path)
{
	return nftw(path, tu_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}
#endif

uint64_t tu_file_size(const char *path)
{
	struct stat st;
	ck_assert_msg(stat(path, &st) == 0, "stat(%s): %s", path,
		      strerror(errno));
	return (uint64_t)st.st_size;
}

void tu_write_file(const char *path, const void *data, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_BINARY, 0644);
	ck_assert_msg(fd >= 0, "open(%s): %s", path, strerror(errno));
	const unsigned char *p = data;
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		ck_assert_msg(w > 0, "write(%s): %s", path, strerror(errno));
		p += w;
		n -= (size_t)w;
	}
	ck_assert_msg(close(fd) == 0, "close(%s)", path);
}

unsigned char *tu_read_file(const char *path, size_t *n)
{
	int fd = open(path, O_RDONLY | O_BINARY);
	ck_assert_msg(fd >= 0, "open(%s): %s", path, strerror(errno));
	struct stat st;
	ck_assert_msg(fstat(fd, &st) == 0, "fstat(%s)", path);
	size_t size = (size_t)st.st_size;
	unsigned char *buf = malloc(size ? size : 1);
	ck_assert_msg(buf != NULL, "out of memory reading %s", path);
	size_t got = 0;
	while (got < size) {
		ssize_t r = read(fd, buf + got, size - got);
		ck_assert_msg(r > 0, "read(%s): %s", path, strerror(errno));
		got += (size_t)r;
	}
	close(fd);
	*n = size;
	return buf;
}

void tu_copy_file(const char *src, const char *dst)
{
	size_t n;
	unsigned char *buf = tu_read_file(src, &n);
	tu_write_file(dst, buf, n);
	free(buf);
}

void tu_flip_byte(const char *path, uint64_t off, unsigned char mask)
{
	int fd = open(path, O_RDWR | O_BINARY);
	ck_assert_msg(fd >= 0, "open(%s): %s", path, strerror(errno));
	unsigned char b;
	ck_assert_msg(pread(fd, &b, 1, (off_t)off) == 1,
		      "pread(%s, %llu) failed", path, (unsigned long long)off);
	b ^= mask;
	ck_assert_msg(pwrite(fd, &b, 1, (off_t)off) == 1,
		      "pwrite(%s, %llu) failed", path, (unsigned long long)off);
	close(fd);
}

void tu_truncate_file(const char *path, uint64_t size)
{
	ck_assert_msg(truncate(path, (off_t)size) == 0, "truncate(%s): %s",
		      path, strerror(errno));
}

/* ---- prng ------------------------------------------------------------- */

uint64_t tu_seed_current;

uint64_t tu_seed(uint64_t dflt)
{
	const char *s = getenv("MAPKV_TEST_SEED");
	if (s && *s)
		return strtoull(s, NULL, 0);
	return dflt;
}

uint64_t tu_mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

void tu_rng_init(tu_rng *r, uint64_t seed)
{
	r->seed = seed;
	r->state = seed;
	tu_seed_current = seed;
}

uint64_t tu_rng_next(tu_rng *r)
{
	/* splitmix64 */
	uint64_t z = (r->state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint64_t tu_rng_below(tu_rng *r, uint64_t n)
{
	if (n == 0)
		return 0;
	/* Rejection sampling keeps it uniform. */
	uint64_t lim = UINT64_MAX - UINT64_MAX % n;
	uint64_t x;
	do
		x = tu_rng_next(r);
	while (x >= lim);
	return x % n;
}

uint64_t tu_rng_range(tu_rng *r, uint64_t lo, uint64_t hi)
{
	return lo + tu_rng_below(r, hi - lo + 1);
}

/* ---- deterministic data ----------------------------------------------- */

void tu_fill_bytes(void *buf, size_t n, uint64_t seed)
{
	unsigned char *p = buf;
	uint64_t base = tu_mix64(seed);
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t x = tu_mix64(base + i);
		memcpy(p + i, &x, 8);
	}
	if (i < n) {
		uint64_t x = tu_mix64(base + i);
		memcpy(p + i, &x, n - i);
	}
}

size_t tu_check_bytes(const void *buf, size_t n, uint64_t seed)
{
	const unsigned char *p = buf;
	uint64_t base = tu_mix64(seed);
	for (size_t i = 0; i < n; i += 8) {
		uint64_t x = tu_mix64(base + i);
		size_t len = n - i < 8 ? n - i : 8;
		if (memcmp(p + i, &x, len) != 0) {
			unsigned char e[8];
			memcpy(e, &x, 8);
			for (size_t j = 0; j < len; j++)
				if (p[i + j] != e[j])
					return i + j;
		}
	}
	return (size_t)-1;
}

size_t tu_make_seq_key(void *buf, size_t size, uint64_t n)
{
	unsigned char *p = buf;
	for (size_t i = size; i > 0; i--) {
		p[i - 1] = (unsigned char)('0' + n % 10);
		n /= 10;
	}
	return size;
}

uint64_t tu_hash64(const void *buf, size_t n)
{
	const unsigned char *p = buf;
	uint64_t h = 0x243f6a8885a308d3ull ^ n;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t x;
		memcpy(&x, p + i, 8);
		h = tu_mix64(h ^ x);
	}
	uint64_t x = 0;
	memcpy(&x, p + i, n - i);
	return tu_mix64(h ^ x ^ ((uint64_t)(n - i) << 56));
}

int tu_keycmp(const void *a, size_t al, const void *b, size_t bl)
{
	size_t n = al < bl ? al : bl;
	int c = n ? memcmp(a, b, n) : 0;
	if (c)
		return c;
	return al < bl ? -1 : al > bl ? 1 : 0;
}

const char *tu_fmt(const void *p, size_t n)
{
	static char bufs[8][256];
	static unsigned next;
	char *b = bufs[next++ % 8];
	const unsigned char *s = p;
	if (!p) {
		snprintf(b, 256, "(null)");
		return b;
	}
	size_t o = (size_t)snprintf(b, 256, "[%zu]\"", n);
	for (size_t i = 0; i < n; i++) {
		if (o > 200) {
			memcpy(b + o, "...", 3);
			o += 3;
			break;
		}
		if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' && s[i] != '\\')
			b[o++] = (char)s[i];
		else
			o += (size_t)snprintf(b + o, 256 - o, "\\x%02x", s[i]);
	}
	b[o++] = '"';
	b[o] = 0;
	return b;
}

/* ---- model: a treap ordered by tu_keycmp ------------------------------ */

typedef struct tu_node {
	tu_entry e;
	uint64_t prio;
	struct tu_node *l, *r;
} tu_node;

struct tu_model {
	tu_node *root;
	size_t count;
	uint64_t prio_state;
	tu_node **cache; /* in-order array for tu_model_at, or NULL */
	size_t cache_cap;
	int cache_ok;
};

static void *tu_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p) {
		fprintf(stderr, "testutil: out of memory (%zu bytes)\n", n);
		abort();
	}
	return p;
}

static unsigned char *tu_dup(const void *p, size_t n)
{
	unsigned char *d = tu_xmalloc(n);
	if (n)
		memcpy(d, p, n);
	return d;
}

tu_model *tu_model_new(void)
{
	tu_model *m = calloc(1, sizeof(*m));
	if (!m)
		abort();
	m->prio_state = 0x1234567;
	return m;
}

static void tu_node_free(tu_node *n)
{
	while (n) {
		tu_node_free(n->l);
		tu_node *r = n->r;
		free(n->e.key);
		free(n->e.val);
		free(n);
		n = r;
	}
}

void tu_model_clear(tu_model *m)
{
	tu_node_free(m->root);
	m->root = NULL;
	m->count = 0;
	m->cache_ok = 0;
}

void tu_model_free(tu_model *m)
{
	if (!m)
		return;
	tu_model_clear(m);
	free(m->cache);
	free(m);
}

static tu_node *tu_node_clone(const tu_node *n)
{
	if (!n)
		return NULL;
	tu_node *c = tu_xmalloc(sizeof(*c));
	c->e.key = tu_dup(n->e.key, n->e.klen);
	c->e.klen = n->e.klen;
	c->e.val = tu_dup(n->e.val, n->e.vlen);
	c->e.vlen = n->e.vlen;
	c->prio = n->prio;
	c->l = tu_node_clone(n->l);
	c->r = tu_node_clone(n->r);
	return c;
}

tu_model *tu_model_clone(const tu_model *m)
{
	tu_model *c = tu_model_new();
	c->root = tu_node_clone(m->root);
	c->count = m->count;
	c->prio_state = m->prio_state;
	return c;
}

static tu_node *tu_rot_right(tu_node *n)
{
	tu_node *l = n->l;
	n->l = l->r;
	l->r = n;
	return l;
}

static tu_node *tu_rot_left(tu_node *n)
{
	tu_node *r = n->r;
	n->r = r->l;
	r->l = n;
	return r;
}

static tu_node *tu_insert(tu_model *m, tu_node *n, const void *k, size_t kl,
			  const void *v, size_t vl)
{
	if (!n) {
		tu_node *x = tu_xmalloc(sizeof(*x));
		x->e.key = tu_dup(k, kl);
		x->e.klen = kl;
		x->e.val = tu_dup(v, vl);
		x->e.vlen = vl;
		x->prio = tu_mix64(m->prio_state++);
		x->l = x->r = NULL;
		m->count++;
		return x;
	}
	int c = tu_keycmp(k, kl, n->e.key, n->e.klen);
	if (c == 0) {
		free(n->e.val);
		n->e.val = tu_dup(v, vl);
		n->e.vlen = vl;
	} else if (c < 0) {
		n->l = tu_insert(m, n->l, k, kl, v, vl);
		if (n->l->prio > n->prio)
			n = tu_rot_right(n);
	} else {
		n->r = tu_insert(m, n->r, k, kl, v, vl);
		if (n->r->prio > n->prio)
			n = tu_rot_left(n);
	}
	return n;
}

void tu_model_put(tu_model *m, const void *k, size_t kl, const void *v,
		  size_t vl)
{
	m->root = tu_insert(m, m->root, k, kl, v, vl);
	m->cache_ok = 0;
}

static tu_node *tu_remove(tu_model *m, tu_node *n, const void *k, size_t kl,
			  int *found)
{
	if (!n)
		return NULL;
	int c = tu_keycmp(k, kl, n->e.key, n->e.klen);
	if (c < 0) {
		n->l = tu_remove(m, n->l, k, kl, found);
	} else if (c > 0) {
		n->r = tu_remove(m, n->r, k, kl, found);
	} else {
		if (!n->l || !n->r) {
			tu_node *child = n->l ? n->l : n->r;
			free(n->e.key);
			free(n->e.val);
			free(n);
			*found = 1;
			m->count--;
			return child;
		}
		if (n->l->prio > n->r->prio) {
			n = tu_rot_right(n);
			n->r = tu_remove(m, n->r, k, kl, found);
		} else {
			n = tu_rot_left(n);
			n->l = tu_remove(m, n->l, k, kl, found);
		}
	}
	return n;
}

int tu_model_del(tu_model *m, const void *k, size_t kl)
{
	int found = 0;
	m->root = tu_remove(m, m->root, k, kl, &found);
	if (found)
		m->cache_ok = 0;
	return found;
}

const tu_entry *tu_model_get(const tu_model *m, const void *k, size_t kl)
{
	const tu_node *n = m->root;
	while (n) {
		int c = tu_keycmp(k, kl, n->e.key, n->e.klen);
		if (c == 0)
			return &n->e;
		n = c < 0 ? n->l : n->r;
	}
	return NULL;
}

size_t tu_model_count(const tu_model *m)
{
	return m->count;
}

const tu_entry *tu_model_ceil(const tu_model *m, const void *k, size_t kl,
			      int strict)
{
	const tu_node *n = m->root, *best = NULL;
	while (n) {
		int c = tu_keycmp(n->e.key, n->e.klen, k, kl);
		if (c > 0 || (c == 0 && !strict)) {
			best = n;
			n = n->l;
		} else {
			n = n->r;
		}
	}
	return best ? &best->e : NULL;
}

const tu_entry *tu_model_floor(const tu_model *m, const void *k, size_t kl,
			       int strict)
{
	const tu_node *n = m->root, *best = NULL;
	while (n) {
		int c = tu_keycmp(n->e.key, n->e.klen, k, kl);
		if (c < 0 || (c == 0 && !strict)) {
			best = n;
			n = n->r;
		} else {
			n = n->l;
		}
	}
	return best ? &best->e : NULL;
}

const tu_entry *tu_model_first(const tu_model *m)
{
	const tu_node *n = m->root;
	if (!n)
		return NULL;
	while (n->l)
		n = n->l;
	return &n->e;
}

const tu_entry *tu_model_last(const tu_model *m)
{
	const tu_node *n = m->root;
	if (!n)
		return NULL;
	while (n->r)
		n = n->r;
	return &n->e;
}

static size_t tu_fill_cache(tu_node *n, tu_node **out, size_t i)
{
	while (n) {
		i = tu_fill_cache(n->l, out, i);
		out[i++] = n;
		n = n->r;
	}
	return i;
}

const tu_entry *tu_model_at(tu_model *m, size_t i)
{
	if (i >= m->count)
		return NULL;
	if (!m->cache_ok) {
		if (m->cache_cap < m->count) {
			free(m->cache);
			m->cache_cap = m->count * 2;
			m->cache = tu_xmalloc(m->cache_cap * sizeof(*m->cache));
		}
		tu_fill_cache(m->root, m->cache, 0);
		m->cache_ok = 1;
	}
	return &m->cache[i]->e;
}

/* ---- mapkv helpers ---------------------------------------------------- */

/* valgrind cannot reserve the default 64 GiB of address space:
 * MAPKV_TEST_MAX_SIZE (bytes) replaces "default" for such runs. */
uint64_t tu_default_max_size(void)
{
	const char *ms = getenv("MAPKV_TEST_MAX_SIZE");
	return ms && *ms ? strtoull(ms, NULL, 0) : 0;
}

int tu_open_rc(mapkv_env **env, const char *name, unsigned flags,
	       uint64_t max_size)
{
	mapkv_options o;
	memset(&o, 0, sizeof(o));
	o.flags = flags;
	o.max_size = max_size;
	if (max_size == 0)
		o.max_size = tu_default_max_size();
	return mapkv_open(env, tu_path(name), &o);
}

mapkv_env *tu_open(const char *name, unsigned flags, uint64_t max_size)
{
	mapkv_env *env = NULL;
	ck_assert_rc(tu_open_rc(&env, name, flags, max_size), 0);
	ck_assert_ptr_nonnull(env);
	return env;
}

mapkv_env *tu_open_opts(const char *name, const mapkv_options *opts)
{
	mapkv_env *env = NULL;
	mapkv_options o;
	memset(&o, 0, sizeof(o));
	if (opts)
		o = *opts;
	if (o.max_size == 0)
		o.max_size = tu_default_max_size();
	ck_assert_rc(mapkv_open(&env, tu_path(name), &o), 0);
	ck_assert_ptr_nonnull(env);
	return env;
}

mapkv_txn *tu_begin(mapkv_env *env, unsigned flags)
{
	mapkv_txn *txn = NULL;
	ck_assert_rc(mapkv_txn_begin(env, flags, &txn), 0);
	ck_assert_ptr_nonnull(txn);
	return txn;
}

void tu_commit(mapkv_txn *txn)
{
	ck_assert_rc(mapkv_txn_commit(txn), 0);
}

int tu_put_rc(mapkv_txn *txn, mapkv_dbi dbi, const void *k, size_t kl,
	      const void *v, size_t vl, unsigned flags)
{
	mapkv_val key = {k, kl}, val = {v, vl};
	return mapkv_put(txn, dbi, &key, &val, flags);
}

void tu_put(mapkv_txn *txn, mapkv_dbi dbi, const void *k, size_t kl,
	    const void *v, size_t vl)
{
	int rc = tu_put_rc(txn, dbi, k, kl, v, vl, 0);
	tu_check(rc == 0, "put %s (value %zu bytes) returned %d (%s)",
		 tu_fmt(k, kl), vl, rc, mapkv_strerror(rc));
}

int tu_get_rc(mapkv_txn *txn, mapkv_dbi dbi, const void *k, size_t kl,
	      mapkv_val *out)
{
	mapkv_val key = {k, kl};
	return mapkv_get(txn, dbi, &key, out);
}

int tu_del_rc(mapkv_txn *txn, mapkv_dbi dbi, const void *k, size_t kl)
{
	mapkv_val key = {k, kl};
	return mapkv_del(txn, dbi, &key);
}

void tu_put_str(mapkv_txn *txn, mapkv_dbi dbi, const char *k, const char *v)
{
	tu_put(txn, dbi, k, strlen(k), v, strlen(v));
}

void tu_expect_str(mapkv_txn *txn, mapkv_dbi dbi, const char *k, const char *v)
{
	mapkv_val out = {NULL, 0};
	int rc = tu_get_rc(txn, dbi, k, strlen(k), &out);
	if (!v) {
		ck_assert_msg(rc == MAPKV_NOTFOUND,
			      "get \"%s\": expected MAPKV_NOTFOUND, got %d (%s)"
			      " value %s",
			      k, rc, mapkv_strerror(rc),
			      rc == 0 ? tu_fmt(out.data, out.size) : "-");
		return;
	}
	ck_assert_msg(rc == 0, "get \"%s\": expected \"%s\", got %d (%s)", k, v,
		      rc, mapkv_strerror(rc));
	ck_assert_msg(out.size == strlen(v) &&
			      memcmp(out.data, v, out.size) == 0,
		      "get \"%s\": expected \"%s\", got %s", k, v,
		      tu_fmt(out.data, out.size));
}

mapkv_envinfo tu_env_info(mapkv_env *env)
{
	mapkv_envinfo info;
	memset(&info, 0, sizeof(info));
	ck_assert_rc(mapkv_env_info(env, &info), 0);
	return info;
}

mapkv_stat_info tu_stat(mapkv_txn *txn, mapkv_dbi dbi)
{
	mapkv_stat_info st;
	memset(&st, 0, sizeof(st));
	ck_assert_rc(mapkv_stat(txn, dbi, &st), 0);
	return st;
}

#define TU_FAIL(...)                                                           \
	do {                                                                   \
		snprintf(err, errlen, __VA_ARGS__);                            \
		goto fail;                                                     \
	} while (0)

static int tu_same(const mapkv_val *k, const mapkv_val *v, const tu_entry *e)
{
	return k->size == e->klen && v->size == e->vlen &&
	       (e->klen == 0 || memcmp(k->data, e->key, e->klen) == 0) &&
	       (e->vlen == 0 || memcmp(v->data, e->val, e->vlen) == 0);
}

int tu_verify_txn_msg(mapkv_txn *txn, mapkv_dbi dbi, const tu_model *m,
		      char *err, size_t errlen)
{
	mapkv_cursor *cur = NULL;
	mapkv_val k, v;
	int rc;
	size_t i, n = tu_model_count(m);
	const tu_entry *e;

	rc = mapkv_cursor_open(txn, dbi, &cur);
	if (rc)
		TU_FAIL("cursor_open: %d (%s)", rc, mapkv_strerror(rc));

	/* Forward. */
	e = tu_model_first(m);
	rc = mapkv_cursor_get(cur, &k, &v, MAPKV_FIRST);
	for (i = 0; e; i++) {
		if (rc)
			TU_FAIL("forward scan: entry %zu of %zu (key %s): "
				"cursor returned %d (%s)",
				i, n, tu_fmt(e->key, e->klen), rc,
				mapkv_strerror(rc));
		if (!tu_same(&k, &v, e))
			TU_FAIL("forward scan: entry %zu of %zu: expected %s "
				"-> %s, cursor gave %s -> %s",
				i, n, tu_fmt(e->key, e->klen),
				tu_fmt(e->val, e->vlen), tu_fmt(k.data, k.size),
				tu_fmt(v.data, v.size));
		e = tu_model_ceil(m, e->key, e->klen, 1);
		rc = mapkv_cursor_get(cur, &k, &v, MAPKV_NEXT);
	}
	if (rc != MAPKV_NOTFOUND)
		TU_FAIL("forward scan: after the %zu model entries expected "
			"MAPKV_NOTFOUND, cursor returned %d (%s) key %s",
			n, rc, mapkv_strerror(rc),
			rc == 0 ? tu_fmt(k.data, k.size) : "-");

	/* Backward. */
	e = tu_model_last(m);
	rc = mapkv_cursor_get(cur, &k, &v, MAPKV_LAST);
	for (i = 0; e; i++) {
		if (rc)
			TU_FAIL("backward scan: entry %zu from the end of %zu "
				"(key %s): cursor returned %d (%s)",
				i, n, tu_fmt(e->key, e->klen), rc,
				mapkv_strerror(rc));
		if (!tu_same(&k, &v, e))
			TU_FAIL("backward scan: entry %zu from the end of %zu: "
				"expected %s -> %s, cursor gave %s -> %s",
				i, n, tu_fmt(e->key, e->klen),
				tu_fmt(e->val, e->vlen), tu_fmt(k.data, k.size),
				tu_fmt(v.data, v.size));
		e = tu_model_floor(m, e->key, e->klen, 1);
		rc = mapkv_cursor_get(cur, &k, &v, MAPKV_PREV);
	}
	if (rc != MAPKV_NOTFOUND)
		TU_FAIL("backward scan: after the %zu model entries expected "
			"MAPKV_NOTFOUND, cursor returned %d (%s) key %s",
			n, rc, mapkv_strerror(rc),
			rc == 0 ? tu_fmt(k.data, k.size) : "-");
	mapkv_cursor_close(cur);
	cur = NULL;

	/* Point lookups. */
	for (e = tu_model_first(m); e;
	     e = tu_model_ceil(m, e->key, e->klen, 1)) {
		mapkv_val key = {e->key, e->klen};
		rc = mapkv_get(txn, dbi, &key, &v);
		if (rc)
			TU_FAIL("get %s: returned %d (%s), expected value %s",
				tu_fmt(e->key, e->klen), rc, mapkv_strerror(rc),
				tu_fmt(e->val, e->vlen));
		k = key;
		if (!tu_same(&k, &v, e))
			TU_FAIL("get %s: expected value %s, got %s",
				tu_fmt(e->key, e->klen),
				tu_fmt(e->val, e->vlen),
				tu_fmt(v.data, v.size));
	}

	mapkv_stat_info st;
	memset(&st, 0, sizeof(st));
	rc = mapkv_stat(txn, dbi, &st);
	if (rc)
		TU_FAIL("mapkv_stat returned %d (%s)", rc, mapkv_strerror(rc));
	if (st.entries != n)
		TU_FAIL("mapkv_stat: entries %llu, model has %zu",
			(unsigned long long)st.entries, n);
	if (n > 0 && (st.depth == 0 || st.leaf_pages == 0))
		TU_FAIL("mapkv_stat: %zu entries but depth %u, leaf_pages %llu",
			n, st.depth, (unsigned long long)st.leaf_pages);
	return 0;
fail:
	if (cur)
		mapkv_cursor_close(cur);
	return -1;
}

void tu_verify_txn(mapkv_txn *txn, mapkv_dbi dbi, const tu_model *m)
{
	char err[1024];
	int rc = tu_verify_txn_msg(txn, dbi, m, err, sizeof(err));
	tu_check(rc == 0, "tree %u differs from the model: %s", (unsigned)dbi,
		 err);
}

void tu_verify_db(mapkv_env *env, mapkv_dbi dbi, const tu_model *m)
{
	mapkv_txn *txn = tu_begin(env, MAPKV_RDONLY);
	char err[1024];
	int rc = tu_verify_txn_msg(txn, dbi, m, err, sizeof(err));
	mapkv_txn_abort(txn);
	tu_check(rc == 0, "tree %u differs from the model: %s", (unsigned)dbi,
		 err);
}

/* ---- reader thread ---------------------------------------------------- */

struct tu_reader {
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	mapkv_env *env;
	mapkv_txn *txn;
	int begin_rc;
	int started;     /* begin has returned */
	int stop;        /* asked to end */
	tu_reader_fn fn; /* pending call */
	void *ctx;
	int fn_done;
	int fn_rc;
	char err[1024];
};

static void *tu_reader_main(void *arg)
{
	tu_reader *r = arg;
	mapkv_txn *txn = NULL;
	int rc = mapkv_txn_begin(r->env, MAPKV_RDONLY, &txn);
	pthread_mutex_lock(&r->mu);
	r->begin_rc = rc;
	r->txn = txn;
	r->started = 1;
	pthread_cond_broadcast(&r->cv);
	if (rc) {
		pthread_mutex_unlock(&r->mu);
		return NULL;
	}
	for (;;) {
		while (!r->stop && !r->fn)
			pthread_cond_wait(&r->cv, &r->mu);
		if (r->fn) {
			tu_reader_fn fn = r->fn;
			void *ctx = r->ctx;
			pthread_mutex_unlock(&r->mu);
			char err[1024];
			err[0] = 0;
			int frc = fn(txn, ctx, err, sizeof(err));
			pthread_mutex_lock(&r->mu);
			r->fn = NULL;
			r->fn_rc = frc;
			memcpy(r->err, err, sizeof(err));
			r->fn_done = 1;
			pthread_cond_broadcast(&r->cv);
			continue;
		}
		break; /* stop */
	}
	pthread_mutex_unlock(&r->mu);
	mapkv_txn_abort(txn);
	return NULL;
}

int tu_reader_start_rc(mapkv_env *env, tu_reader **out)
{
	tu_reader *r = calloc(1, sizeof(*r));
	ck_assert_ptr_nonnull(r);
	r->env = env;
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
	ck_assert_int_eq(pthread_create(&r->th, NULL, tu_reader_main, r), 0);
	pthread_mutex_lock(&r->mu);
	while (!r->started)
		pthread_cond_wait(&r->cv, &r->mu);
	int rc = r->begin_rc;
	pthread_mutex_unlock(&r->mu);
	if (rc) {
		pthread_join(r->th, NULL);
		pthread_mutex_destroy(&r->mu);
		pthread_cond_destroy(&r->cv);
		free(r);
		r = NULL;
	}
	*out = r;
	return rc;
}

tu_reader *tu_reader_start(mapkv_env *env)
{
	tu_reader *r = NULL;
	ck_assert_rc(tu_reader_start_rc(env, &r), 0);
	return r;
}

void tu_reader_call(tu_reader *r, tu_reader_fn fn, void *ctx)
{
	pthread_mutex_lock(&r->mu);
	r->fn = fn;
	r->ctx = ctx;
	r->fn_done = 0;
	pthread_cond_broadcast(&r->cv);
	while (!r->fn_done)
		pthread_cond_wait(&r->cv, &r->mu);
	int rc = r->fn_rc;
	char err[1024];
	memcpy(err, r->err, sizeof(err));
	pthread_mutex_unlock(&r->mu);
	tu_check(rc == 0, "in reader thread: %s", err);
}

static int tu_reader_id_fn(mapkv_txn *txn, void *ctx, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	*(uint64_t *)ctx = mapkv_txn_id(txn);
	return 0;
}

uint64_t tu_reader_txnid(tu_reader *r)
{
	uint64_t id = 0;
	tu_reader_call(r, tu_reader_id_fn, &id);
	return id;
}

struct tu_verify_ctx {
	mapkv_dbi dbi;
	const tu_model *m;
};

static int tu_reader_verify_fn(mapkv_txn *txn, void *ctx, char *err,
			       size_t errlen)
{
	struct tu_verify_ctx *c = ctx;
	return tu_verify_txn_msg(txn, c->dbi, c->m, err, errlen);
}

void tu_reader_verify(tu_reader *r, mapkv_dbi dbi, const tu_model *m)
{
	struct tu_verify_ctx c = {dbi, m};
	tu_reader_call(r, tu_reader_verify_fn, &c);
}

void tu_reader_stop(tu_reader *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->mu);
	r->stop = 1;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
	pthread_join(r->th, NULL);
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->cv);
	free(r);
}
