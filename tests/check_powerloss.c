/*
 * check_powerloss.c: a loss of power at every sync barrier of the commit
 * path leaves a file that opens at the last commit or at the one in flight,
 * never anything else.
 *
 * A test OS layer sits under the library (the os_vfs seam) and keeps, next
 * to the real file, the image that the disk is known to hold: everything
 * written before the last barrier (sync, write_sync). Writes and size
 * changes since then are pending. At each barrier of selected commits the
 * test builds crash images as a disk could leave them: the durable image
 * plus any subset of the pending writes, each whole, missing, or torn at a
 * 512-byte sector boundary, and the pending size change applied or not.
 * Each image is opened by the real library (in a file of its own) and must
 * hold exactly the state of the previous commit or of the commit in
 * flight. Both commit paths are covered: small commits (one sync, the meta
 * page verifies the pages) and large ones (pages synced before the meta).
 *
 * The workload (from a seed) puts, overwrites and deletes in the main
 * tree and in named trees that it creates and drops, with values large
 * enough for overflow pages; the file grows many times and free pages
 * are reused. Images at a barrier come from a random source of their own
 * (seeded by the seed and the barrier's number), so a failure replays
 * exactly from the seed and barrier it prints:
 *   MAPKV_TEST_SEED=S MAPKV_TEST_BARRIER=B tests/check_powerloss
 * makes images at barrier B only (the workload still runs to it).
 *
 * An image is compared with the two allowed states through a digest of
 * every tree (names, keys and values in order), computed once per state
 * from the model and per image by a cursor scan; when neither matches,
 * the trees are compared entry by entry to say what differs.
 * Only distinct images count: at each barrier, images whose bytes equal
 * one already checked there are made again (up to a bound), not counted.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mapkv.h"
#include "os.h"
#include "testutil.h"

int env_open_vfs(mapkv_env **out, const char *path, const mapkv_options *opts,
		 os_vfs *vfs);

/* ---- the recording OS layer ---- */

typedef struct pending {
	uint64_t off;
	size_t len;
	unsigned char *data;
} pending;

static os_vfs base;
static os_vfs rec;
static unsigned char *durable; /* the disk's known content */
static uint64_t durable_size, durable_cap;
static pending *pend;
static size_t npend, cappend;
static uint64_t pend_size; /* size after pending resizes */
static int have_pend_size;
static void (*at_barrier)(void);
static int in_barrier_check;
static os_file *rec_db; /* only the database's writes are recorded */

static void durable_ensure(uint64_t n)
{
	if (n <= durable_cap)
		return;
	uint64_t cap = durable_cap ? durable_cap : 65536;
	while (cap < n)
		cap *= 2;
	durable = realloc(durable, cap);
	ck_assert_ptr_nonnull(durable);
	memset(durable + durable_cap, 0, cap - durable_cap);
	durable_cap = cap;
}

static void apply(unsigned char *img, uint64_t *size, const pending *p,
		  size_t len)
{
	memcpy(img + p->off, p->data, len);
	if (p->off + len > *size)
		*size = p->off + len;
}

/* Byte ranges, to bring the image file and buffer back to the durable
 * image without rewriting them whole. */
typedef struct range {
	uint64_t off, len;
} range;
typedef struct ranges {
	range *v;
	size_t n, cap;
} ranges;

static void add_range(ranges *r, uint64_t off, uint64_t len)
{
	if (len == 0)
		return;
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 64;
		r->v = realloc(r->v, r->cap * sizeof(*r->v));
		ck_assert_ptr_nonnull(r->v);
	}
	r->v[r->n].off = off;
	r->v[r->n].len = len;
	r->n++;
}

static ranges stale; /* where durable changed since the image file saw it */

/* The barrier: everything pending becomes durable. */
static void make_durable(void)
{
	if (have_pend_size) {
		if (pend_size < durable_size)
			add_range(&stale, pend_size, durable_size - pend_size);
		else
			add_range(&stale, durable_size,
				  pend_size - durable_size);
		durable_ensure(pend_size);
		if (pend_size < durable_size)
			memset(durable + pend_size, 0,
			       durable_size - pend_size);
		durable_size = pend_size;
		have_pend_size = 0;
	}
	for (size_t i = 0; i < npend; i++) {
		durable_ensure(pend[i].off + pend[i].len);
		apply(durable, &durable_size, &pend[i], pend[i].len);
		add_range(&stale, pend[i].off, pend[i].len);
		free(pend[i].data);
	}
	npend = 0;
}

/* Note which file is the database (not its lock file). */
static int r_open(os_vfs *v, const char *path, int flags, unsigned mode,
		  os_file **f, int *created)
{
	int rc = base.open(v, path, flags, mode, f, created);
	size_t n = strlen(path);
	if (rc == 0 && !(n > 5 && strcmp(path + n - 5, "-lock") == 0))
		rec_db = *f;
	return rc;
}

static int r_write(os_file *f, const os_iov *iov, int cnt, uint64_t off)
{
	int rc = base.write(f, iov, cnt, off);
	if (rc || f != rec_db)
		return rc;
	for (int i = 0; i < cnt; i++) {
		if (npend == cappend) {
			cappend = cappend ? cappend * 2 : 64;
			pend = realloc(pend, cappend * sizeof(*pend));
			ck_assert_ptr_nonnull(pend);
		}
		pending *p = &pend[npend++];
		p->off = off;
		p->len = iov[i].len;
		p->data = malloc(p->len);
		ck_assert_ptr_nonnull(p->data);
		memcpy(p->data, iov[i].base, p->len);
		off += iov[i].len;
	}
	return 0;
}

static uint64_t n_resizes; /* growths (and shrinks) of the database */

static int r_resize(os_file *f, uint64_t size)
{
	int rc = base.resize(f, size);
	if (rc || f != rec_db)
		return rc;
	n_resizes++;
	pend_size = size;
	have_pend_size = 1;
	return 0;
}

/* The barrier. The real sync is left out: what it would make durable is
 * what this layer records (and the real file stays in the page cache). */
static int r_sync(os_file *f)
{
	if (f != rec_db)
		return base.sync(f); /* the lock file: not a barrier here */
	if (at_barrier && !in_barrier_check) {
		in_barrier_check = 1;
		at_barrier();
		in_barrier_check = 0;
	}
	make_durable();
	return 0;
}

static int r_write_sync(os_file *f, const os_iov *iov, int cnt, uint64_t off)
{
	int rc = r_write(f, iov, cnt, off);
	return rc ? rc : r_sync(f);
}

static void rec_setup(void)
{
	base = *os_default_vfs();
	rec = base;
	rec.open = r_open;
	rec.write = r_write;
	rec.resize = r_resize;
	rec.sync = r_sync;
	rec.write_sync = r_write_sync;
	free(durable);
	durable = NULL;
	durable_size = durable_cap = 0;
	stale.n = 0;
	for (size_t i = 0; i < npend; i++)
		free(pend[i].data);
	npend = 0;
	have_pend_size = 0;
	at_barrier = NULL;
	in_barrier_check = 0;
}

/* ---- the workload's state: the main tree and three named trees ---- */

#define NTREES 4
static const char *const tree_names[NTREES] = {NULL, "one", "two", "three"};

typedef struct state {
	tu_model *t[NTREES]; /* NULL: the named tree does not exist */
	uint64_t digest;
	int have_digest;
} state;

static void state_free(state *s)
{
	for (int i = 0; i < NTREES; i++)
		tu_model_free(s->t[i]);
	memset(s, 0, sizeof(*s));
}

static void state_clone(state *dst, const state *src)
{
	memset(dst, 0, sizeof(*dst));
	for (int i = 0; i < NTREES; i++)
		if (src->t[i])
			dst->t[i] = tu_model_clone(src->t[i]);
	dst->digest = src->digest;
	dst->have_digest = src->have_digest;
}

/* A fast 64-bit hash of bytes (not for adversaries: it tells states and
 * images apart, and runs over every byte of every image). */
static inline uint64_t fhash(uint64_t h, const void *buf, size_t n)
{
	const unsigned char *p = buf;
	const uint64_t K = 0x9e3779b97f4a7c15ull;
	h ^= n * K;
	for (; n >= 8; p += 8, n -= 8) {
		uint64_t x;
		memcpy(&x, p, 8);
		h = ((h ^ x) * K);
		h ^= h >> 29;
	}
	uint64_t x = 0;
	memcpy(&x, p, n);
	return tu_mix64(h ^ x);
}

/* The digest of one pair, of one tree's name, folded in order. */
static uint64_t fold_pair(uint64_t h, const void *k, size_t kl, const void *v,
			  size_t vl)
{
	return fhash(fhash(h, k, kl), v, vl);
}

static uint64_t fold_tree(uint64_t h, int i)
{
	return tu_mix64(h ^ (0x7265650000000000ull + (uint64_t)i));
}

static uint64_t state_digest(state *s)
{
	if (s->have_digest)
		return s->digest;
	uint64_t h = 0;
	for (int i = 0; i < NTREES; i++) {
		if (!s->t[i])
			continue;
		h = fold_tree(h, i);
		size_t n = tu_model_count(s->t[i]);
		for (size_t j = 0; j < n; j++) {
			const tu_entry *e = tu_model_at(s->t[i], j);
			h = fold_pair(h, e->key, e->klen, e->val, e->vlen);
		}
	}
	s->digest = h;
	s->have_digest = 1;
	return h;
}

/* The same digest of what @txn sees; *err says why when it cannot be
 * read (returns nonzero). */
static int txn_digest(mapkv_txn *txn, uint64_t *out, char *err, size_t len)
{
	uint64_t h = 0;
	for (int i = 0; i < NTREES; i++) {
		mapkv_dbi dbi = 0;
		int rc = i ? mapkv_dbi_open(txn, tree_names[i], 0, &dbi) : 0;
		if (rc == MAPKV_NOTFOUND)
			continue;
		if (rc) {
			snprintf(err, len, "tree %s: %s", tree_names[i],
				 mapkv_strerror(rc));
			return -1;
		}
		h = fold_tree(h, i);
		mapkv_cursor *c;
		mapkv_val k, v;
		rc = mapkv_cursor_open(txn, dbi, &c);
		while (rc == 0 &&
		       (rc = mapkv_cursor_get(c, &k, &v, MAPKV_NEXT)) == 0)
			h = fold_pair(h, k.data, k.size, v.data, v.size);
		mapkv_cursor_close(c);
		if (rc != MAPKV_NOTFOUND) {
			snprintf(err, len, "scan of tree %s: %s",
				 i ? tree_names[i] : "main",
				 mapkv_strerror(rc));
			return -1;
		}
	}
	*out = h;
	return 0;
}

/* Why @txn does not hold @s, in words. */
static void state_diff(mapkv_txn *txn, const state *s, char *err, size_t len)
{
	for (int i = 0; i < NTREES; i++) {
		mapkv_dbi dbi = 0;
		int rc = i ? mapkv_dbi_open(txn, tree_names[i], 0, &dbi) : 0;
		const char *name = i ? tree_names[i] : "main";
		if (rc == MAPKV_NOTFOUND && !s->t[i])
			continue;
		if (rc || !s->t[i]) {
			snprintf(err, len, "tree %s: %s", name,
				 rc ? mapkv_strerror(rc)
				    : "exists but should not");
			return;
		}
		char e[200];
		if (tu_verify_txn_msg(txn, dbi, s->t[i], e, sizeof(e))) {
			snprintf(err, len, "tree %s: %s", name, e);
			return;
		}
	}
	snprintf(err, len, "(no difference found entry by entry)");
}

/* ---- crash images ---- */

static uint64_t seed_used;
static state committed; /* state of the last successful commit */
static state inflight;  /* state the commit in progress makes */
static uint64_t n_images, n_repeats, n_barriers, only_barrier;
static int images_per_barrier;

/* ---- the image file ----
 *
 * One file, image.db, holds the durable image between crash images; each
 * image is made from it by writing only where it differs (the pending
 * writes chosen, the size), and undone the same way, together with
 * whatever the library wrote while it opened the image (a meta page it
 * repaired): a test OS layer under the image's environment notes those
 * ranges. img[] mirrors the file in memory.
 */
static char img_path[4096];
static int img_fd = -1;
static os_file *img_file; /* the library's handle on image.db */
static unsigned char *img;
static uint64_t img_cap;
static ranges touched; /* where this image differs from durable */
static uint64_t img_file_size;
static os_vfs imgv;

static int i_open(os_vfs *v, const char *path, int flags, unsigned mode,
		  os_file **f, int *created)
{
	int rc = base.open(v, path, flags, mode, f, created);
	if (rc == 0 && strcmp(path, img_path) == 0)
		img_file = *f;
	return rc;
}

static int i_write(os_file *f, const os_iov *iov, int cnt, uint64_t off)
{
	int rc = base.write(f, iov, cnt, off);
	if (f == img_file)
		for (int i = 0; i < cnt; i++) {
			add_range(&touched, off, iov[i].len);
			off += iov[i].len;
		}
	return rc;
}

static int i_write_sync(os_file *f, const os_iov *iov, int cnt, uint64_t off)
{
	int rc = i_write(f, iov, cnt, off);
	return rc ? rc : base.sync(f);
}

static int i_resize(os_file *f, uint64_t size)
{
	int rc = base.resize(f, size);
	if (f == img_file) {
		img_file_size = (uint64_t)-1; /* unknown: set it again */
		if (size < durable_size)
			add_range(&touched, size, durable_size - size);
	}
	return rc;
}

static void img_setup(void)
{
	imgv = base;
	imgv.open = i_open;
	imgv.write = i_write;
	imgv.write_sync = i_write_sync;
	imgv.resize = i_resize;
	snprintf(img_path, sizeof(img_path), "%s", tu_path("image.db"));
	unlink(img_path);
	if (img_fd >= 0)
		close(img_fd);
	img_fd = open(img_path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	ck_assert_int_ge(img_fd, 0);
	img_file_size = 0;
	free(img);
	img = NULL;
	img_cap = 0;
	stale.n = 0;
}

/* tu_check only when it fails: Check records every assertion that passes,
 * a cost on this path, which runs for every image. */
#define must(cond, ...)                                                        \
	do {                                                                   \
		if (!(cond))                                                   \
			tu_check(0, __VA_ARGS__);                              \
	} while (0)

static void pwrite_all(const unsigned char *p, uint64_t off, uint64_t len)
{
	while (len) {
		ssize_t w = pwrite(img_fd, p + off, len, (off_t)off);
		must(w > 0, "image file: write: %s", strerror(errno));
		off += (uint64_t)w;
		len -= (uint64_t)w;
	}
}

/* (Only when the size changes: on ext4 a file truncated shorter is
 * written back when closed.) */
static void img_truncate(uint64_t size)
{
	if (size == img_file_size)
		return;
	must(ftruncate(img_fd, (off_t)size) == 0, "image file: truncate: %s",
	     strerror(errno));
	img_file_size = size;
}

/* Put @r's ranges of the durable image back into the file and img[]. */
static void img_restore(const ranges *r)
{
	for (size_t i = 0; i < r->n; i++) {
		uint64_t a = r->v[i].off, b = a + r->v[i].len;
		if (b > img_cap)
			b = img_cap;
		if (a < b)
			memcpy(img + a, durable + a, b - a);
		if (b > durable_size)
			b = durable_size;
		if (a < b)
			pwrite_all(durable, a, b - a);
	}
}

/* Bring the image file and img[] up to the durable image, with room for
 * @cap bytes. */
static void img_sync(uint64_t cap)
{
	durable_ensure(cap); /* zeros past the durable size */
	if (cap > img_cap) {
		img = realloc(img, cap);
		ck_assert_ptr_nonnull(img);
		memcpy(img + img_cap, durable + img_cap, cap - img_cap);
		img_cap = cap;
	}
	img_truncate(durable_size);
	img_restore(&stale);
	stale.n = 0;
}

/* Open the crash image the file holds and compare it with the two allowed
 * states. */
static void check_image(uint64_t size, int k)
{
	char what[160];
	snprintf(what, sizeof(what),
		 "seed %#llx barrier %llu image %d (replay: MAPKV_TEST_SEED="
		 "%#llx MAPKV_TEST_BARRIER=%llu)",
		 (unsigned long long)seed_used, (unsigned long long)n_barriers,
		 k, (unsigned long long)seed_used,
		 (unsigned long long)n_barriers);
	mapkv_env *env = NULL;
	img_file = NULL;
	int rc = env_open_vfs(&env, img_path, NULL, &imgv);
	must(rc == 0, "%s: image of %llu bytes does not open: %s", what,
	     (unsigned long long)size, mapkv_strerror(rc));
	mapkv_txn *txn = NULL;
	rc = mapkv_txn_begin(env, MAPKV_RDONLY, &txn);
	must(rc == 0, "%s: read transaction: %s", what, mapkv_strerror(rc));
	uint64_t problems = 0, h = 0;
	rc = mapkv_check(txn, NULL, NULL, &problems);
	must(rc == 0, "%s: the integrity check finds %llu problems (%s)", what,
	     (unsigned long long)problems, mapkv_strerror(rc));
	char e1[300] = "", e2[300] = "";
	rc = txn_digest(txn, &h, e1, sizeof(e1));
	must(rc == 0, "%s: %s", what, e1);
	int ok = h == state_digest(&committed) || h == state_digest(&inflight);
	if (!ok) {
		state_diff(txn, &committed, e1, sizeof(e1));
		state_diff(txn, &inflight, e2, sizeof(e2));
	}
	mapkv_txn_abort(txn);
	mapkv_close(env);
	img_file = NULL;
	must(ok,
	     "%s: image holds neither the last commit (%s) nor the one "
	     "in flight (%s)",
	     what, e1, e2);
	n_images++;
}

/* What identifies an image at this barrier: its size and its bytes where
 * pending writes may have landed (the rest is the durable image). */
static uint64_t image_key(uint64_t size)
{
	uint64_t h = tu_mix64(size);
	for (size_t i = 0; i < npend; i++) {
		uint64_t a = pend[i].off, b = a + pend[i].len;
		if (b > size)
			b = size;
		if (a < b)
			h = fhash(h, img + a, b - a);
	}
	return h;
}

/* Lay pending write @p (its first @len bytes) over img[]. */
static void img_apply(uint64_t *size, const pending *p, size_t len)
{
	apply(img, size, p, len);
	add_range(&touched, p->off, len);
}

/* Called at every barrier: build crash images from what is durable and
 * what is pending. */
static void crash_images(void)
{
	n_barriers++;
	if (only_barrier && n_barriers != only_barrier)
		return;
	tu_rng rng;
	tu_rng_init(&rng, tu_mix64(seed_used ^ tu_mix64(n_barriers)));
	tu_seed_current = seed_used; /* printed on failure */
	uint64_t cap = durable_size;
	for (size_t i = 0; i < npend; i++)
		if (pend[i].off + pend[i].len > cap)
			cap = pend[i].off + pend[i].len;
	if (have_pend_size && pend_size > cap)
		cap = pend_size;
	img_sync(cap);
	uint64_t *seen = malloc(sizeof(*seen) * images_per_barrier);
	ck_assert_ptr_nonnull(seen);
	int nseen = 0;
	for (int k = 0;
	     k < 4 * images_per_barrier && nseen < images_per_barrier; k++) {
		uint64_t size = durable_size;
		touched.n = 0;
		/* k = 0: nothing since the barrier reached the disk; k = 1:
		 * everything did; later ones: a random subset, some torn. */
		if (have_pend_size &&
		    (k == 1 || (k > 1 && tu_rng_below(&rng, 2)))) {
			if (pend_size < size) {
				memset(img + pend_size, 0, size - pend_size);
				add_range(&touched, pend_size,
					  size - pend_size);
			}
			size = pend_size;
		}
		for (size_t i = 0; i < npend && k > 0; i++) {
			size_t len = pend[i].len;
			if (k > 1) {
				uint64_t r = tu_rng_below(&rng, 4);
				if (r == 0)
					continue; /* lost */
				if (r == 1)       /* torn after some sectors */
					len = 512 *
					      tu_rng_below(&rng, len / 512 + 1);
				if (r == 2 && len > 512) {
					/* One sector inside kept its old
					 * content. */
					uint64_t o =
						pend[i].off +
						512 * tu_rng_below(&rng,
								   len / 512);
					img_apply(&size, &pend[i], len);
					memcpy(img + o, durable + o, 512);
					continue;
				}
			}
			img_apply(&size, &pend[i], len);
		}
		uint64_t key = image_key(size);
		int dup = 0;
		for (int j = 0; j < nseen && !dup; j++)
			dup = seen[j] == key;
		if (dup) {
			n_repeats++;
		} else {
			seen[nseen++] = key;
			/* the file becomes the image */
			img_truncate(size);
			for (size_t i = 0; i < touched.n; i++) {
				uint64_t a = touched.v[i].off,
					 b = a + touched.v[i].len;
				if (b > size)
					b = size;
				if (a < b)
					pwrite_all(img, a, b - a);
			}
			check_image(size, k);
		}
		/* and back to the durable image */
		if (size < durable_size)
			add_range(&touched, size, durable_size - size);
		img_truncate(durable_size);
		img_restore(&touched);
	}
	free(seen);
}

/* ---- the workload ---- */

static tu_rng wrng;

/* A random existing tree. */
static int pick_tree(const state *s)
{
	for (;;) {
		int i = (int)tu_rng_below(&wrng, NTREES);
		if (s->t[i])
			return i;
	}
}

static mapkv_dbi open_tree(mapkv_txn *txn, int i, unsigned flags)
{
	mapkv_dbi dbi = 0;
	if (i)
		ck_assert_rc(mapkv_dbi_open(txn, tree_names[i], flags, &dbi),
			     0);
	return dbi;
}

static void put_rand(mapkv_txn *txn, state *s)
{
	unsigned char k[64], v[16000];
	int t = pick_tree(s);
	size_t kl = 1 + tu_rng_below(&wrng, 40);
	uint64_t kn = tu_rng_below(&wrng, 1000);
	kl = tu_make_seq_key(k, kl < 4 ? 4 : kl, kn);
	size_t vl;
	uint64_t r = tu_rng_below(&wrng, 100);
	if (r < 3)
		vl = 3000 + tu_rng_below(&wrng, 13000); /* overflow pages */
	else
		vl = tu_rng_below(&wrng, 200);
	tu_fill_bytes(v, vl, tu_rng_next(&wrng));
	tu_put(txn, open_tree(txn, t, 0), k, kl, v, vl);
	tu_model_put(s->t[t], k, kl, v, vl);
}

static void del_rand(mapkv_txn *txn, state *s)
{
	int t = pick_tree(s);
	size_t n = tu_model_count(s->t[t]);
	if (n == 0)
		return;
	const tu_entry *e = tu_model_at(s->t[t], tu_rng_below(&wrng, n));
	unsigned char k[MAPKV_MAX_KEY_SIZE];
	size_t kl = e->klen;
	memcpy(k, e->key, kl);
	ck_assert_rc(tu_del_rc(txn, open_tree(txn, t, 0), k, kl), 0);
	tu_model_del(s->t[t], k, kl);
}

/* Create a missing named tree, or drop (delete) an existing one. */
static void create_or_drop(mapkv_txn *txn, state *s)
{
	int i = 1 + (int)tu_rng_below(&wrng, NTREES - 1);
	if (!s->t[i]) {
		open_tree(txn, i, MAPKV_CREATE);
		s->t[i] = tu_model_new();
	} else {
		ck_assert_rc(mapkv_dbi_drop(txn, open_tree(txn, i, 0), 1), 0);
		tu_model_free(s->t[i]);
		s->t[i] = NULL;
	}
}

/* Run @commits commits of the workload, with crash images at every
 * barrier (creating the file included). */
static void run(uint64_t seed, int commits, int per_barrier)
{
	rec_setup();
	img_setup();
	seed_used = tu_seed(seed);
	const char *ob = getenv("MAPKV_TEST_BARRIER");
	only_barrier = ob && *ob ? strtoull(ob, NULL, 0) : 0;
	tu_rng_init(&wrng, seed_used);
	images_per_barrier = per_barrier;
	n_images = n_repeats = n_barriers = n_resizes = 0;
	memset(&committed, 0, sizeof(committed));
	committed.t[0] = tu_model_new();
	state_clone(&inflight, &committed);
	mapkv_env *env;
	at_barrier = crash_images; /* a crash while the file is created */
	ck_assert_rc(env_open_vfs(&env, tu_path("db"), NULL, &rec), 0);
	state_free(&inflight);
	for (int c = 0; c < commits; c++) {
		state_clone(&inflight, &committed);
		inflight.have_digest = 0;
		mapkv_txn *txn = tu_begin(env, 0);
		uint64_t kind = tu_rng_below(&wrng, 20);
		int ops = kind == 0  ? 700 /* a large commit */
			  : kind < 4 ? 40
				     : 1 + (int)tu_rng_below(&wrng, 6);
		if (tu_rng_below(&wrng, 12) == 0)
			create_or_drop(txn, &inflight);
		for (int i = 0; i < ops; i++) {
			if (tu_rng_below(&wrng, 4) == 0)
				del_rand(txn, &inflight);
			else
				put_rand(txn, &inflight);
		}
		tu_commit(txn);
		state_free(&committed);
		committed = inflight;
		memset(&inflight, 0, sizeof(inflight));
	}
	at_barrier = NULL;
	/* The real file is the last commit. */
	mapkv_close(env);
	ck_assert_rc(mapkv_open(&env, tu_path("db"), NULL), 0);
	mapkv_txn *txn = tu_begin(env, MAPKV_RDONLY);
	uint64_t h = 0;
	char err[300] = "";
	ck_assert_int_eq(txn_digest(txn, &h, err, sizeof(err)), 0);
	if (h != state_digest(&committed))
		state_diff(txn, &committed, err, sizeof(err));
	tu_check(h == state_digest(&committed),
		 "the file after the run differs from the model: %s", err);
	mapkv_txn_abort(txn);
	mapkv_envinfo info = tu_env_info(env);
	fprintf(stderr,
		"check_powerloss: seed %#llx, %d commits, %llu barriers, "
		"%llu distinct crash images opened, checked and verified "
		"(%llu repeats skipped), %llu size changes, file %llu KiB\n",
		(unsigned long long)seed_used, commits,
		(unsigned long long)n_barriers, (unsigned long long)n_images,
		(unsigned long long)n_repeats, (unsigned long long)n_resizes,
		(unsigned long long)(info.file_size >> 10));
	mapkv_close(env);
	state_free(&committed);
}

START_TEST(test_power_loss_at_every_barrier_keeps_a_commit)
{
	/* make check: >= 10,000 images; check-long: >= 1,000,000. */
	int commits = (int)tu_scale(400, 10000);
	int per = (int)tu_scale(30, 120);
	uint64_t want = tu_scale(10000, 1000000);
	run(0x90e71055, commits, per);
	if (!only_barrier)
		tu_check(n_images >= want,
			 "only %llu distinct crash images were made, want "
			 "%llu",
			 (unsigned long long)n_images,
			 (unsigned long long)want);
	else
		tu_check(n_images > 0, "barrier %llu was never reached",
			 (unsigned long long)only_barrier);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("powerloss");
	TCase *tc = tu_tcase(s, "powerloss", 900);
	tcase_add_test(tc, test_power_loss_at_every_barrier_keeps_a_commit);
	return tu_run_suite(s);
}
