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
 * A failure prints the seed; MAPKV_TEST_SEED=n replays it.
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

/* The barrier: everything pending becomes durable. */
static void make_durable(void)
{
	if (have_pend_size) {
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

static int r_resize(os_file *f, uint64_t size)
{
	int rc = base.resize(f, size);
	if (rc || f != rec_db)
		return rc;
	pend_size = size;
	have_pend_size = 1;
	return 0;
}

static int r_sync(os_file *f)
{
	if (at_barrier && !in_barrier_check) {
		in_barrier_check = 1;
		at_barrier();
		in_barrier_check = 0;
	}
	int rc = base.sync(f);
	if (rc)
		return rc;
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
	for (size_t i = 0; i < npend; i++)
		free(pend[i].data);
	npend = 0;
	have_pend_size = 0;
	at_barrier = NULL;
	in_barrier_check = 0;
}

/* ---- workload and checks ---- */

static tu_rng rng;
static tu_model *committed; /* state of the last successful commit */
static tu_model *inflight;  /* state the commit in progress makes */
static uint64_t n_images, n_barriers;
static int images_per_barrier;

/* Open a crash image and compare it with the two allowed states. */
static void check_image(const unsigned char *img, uint64_t size,
			const char *what)
{
	const char *path = tu_path("image.db");
	unlink(path);
	tu_write_file(path, img, size);
	mapkv_env *env = NULL;
	int rc = mapkv_open(&env, path, NULL);
	tu_check(rc == 0, "%s: image of %llu bytes does not open: %s", what,
		 (unsigned long long)size, mapkv_strerror(rc));
	mapkv_txn *txn = tu_begin(env, MAPKV_RDONLY);
	uint64_t problems = 0;
	rc = mapkv_check(txn, NULL, NULL, &problems);
	tu_check(rc == 0, "%s: the integrity check finds %llu problems (%s)",
		 what, (unsigned long long)problems, mapkv_strerror(rc));
	char e1[256] = "", e2[256] = "";
	int ok = tu_verify_txn_msg(txn, 0, committed, e1, sizeof(e1)) == 0 ||
		 tu_verify_txn_msg(txn, 0, inflight, e2, sizeof(e2)) == 0;
	mapkv_txn_abort(txn);
	mapkv_close(env);
	tu_check(ok,
		 "%s: image holds neither the last commit (%s) nor the one "
		 "in flight (%s)",
		 what, e1, e2);
	n_images++;
}

/* Called at every barrier: build crash images from what is durable and
 * what is pending. */
static void crash_images(void)
{
	n_barriers++;
	uint64_t cap = durable_size;
	for (size_t i = 0; i < npend; i++)
		if (pend[i].off + pend[i].len > cap)
			cap = pend[i].off + pend[i].len;
	if (have_pend_size && pend_size > cap)
		cap = pend_size;
	unsigned char *img = malloc(cap ? cap : 1);
	ck_assert_ptr_nonnull(img);
	char what[96];
	for (int k = 0; k < images_per_barrier; k++) {
		uint64_t size = durable_size;
		memset(img, 0, cap);
		memcpy(img, durable, durable_size);
		/* k = 0: nothing since the barrier reached the disk; k = 1:
		 * everything did; later ones: a random subset, some torn. */
		if (have_pend_size &&
		    (k == 1 || (k > 1 && tu_rng_below(&rng, 2)))) {
			if (pend_size < size)
				memset(img + pend_size, 0, size - pend_size);
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
					apply(img, &size, &pend[i], len);
					for (uint64_t b = o; b < o + 512; b++)
						img[b] = b < durable_size
								 ? durable[b]
								 : 0;
					continue;
				}
			}
			apply(img, &size, &pend[i], len);
		}
		snprintf(what, sizeof(what), "barrier %llu image %d",
			 (unsigned long long)n_barriers, k);
		check_image(img, size, what);
	}
	free(img);
}

static void put_rand(mapkv_txn *txn, tu_model *m)
{
	unsigned char k[64], v[70000];
	size_t kl = 1 + tu_rng_below(&rng, 40);
	uint64_t kn = tu_rng_below(&rng, 3000);
	kl = tu_make_seq_key(k, kl < 4 ? 4 : kl, kn);
	size_t vl;
	uint64_t r = tu_rng_below(&rng, 100);
	if (r < 3)
		vl = 3000 + tu_rng_below(&rng, 60000); /* overflow pages */
	else
		vl = tu_rng_below(&rng, 200);
	tu_fill_bytes(v, vl, tu_rng_next(&rng));
	tu_put(txn, 0, k, kl, v, vl);
	tu_model_put(m, k, kl, v, vl);
}

static void del_rand(mapkv_txn *txn, tu_model *m)
{
	size_t n = tu_model_count(m);
	if (n == 0)
		return;
	const tu_entry *e = tu_model_at(m, tu_rng_below(&rng, n));
	unsigned char k[MAPKV_MAX_KEY_SIZE];
	size_t kl = e->klen;
	memcpy(k, e->key, kl);
	ck_assert_rc(tu_del_rc(txn, 0, k, kl), 0);
	tu_model_del(m, k, kl);
}

/* Run @commits commits of the workload; images are made at the barriers
 * of every commit whose number is a multiple of @every. */
static void run(uint64_t seed, int commits, int every, int per_barrier)
{
	rec_setup();
	tu_rng_init(&rng, tu_seed(seed));
	images_per_barrier = per_barrier;
	committed = tu_model_new();
	mapkv_env *env;
	ck_assert_rc(env_open_vfs(&env, tu_path("db"), NULL, &rec), 0);
	for (int c = 0; c < commits; c++) {
		inflight = tu_model_clone(committed);
		mapkv_txn *txn = tu_begin(env, 0);
		uint64_t kind = tu_rng_below(&rng, 20);
		int ops = kind == 0  ? 1500 /* a large commit */
			  : kind < 4 ? 60
				     : 1 + (int)tu_rng_below(&rng, 6);
		for (int i = 0; i < ops; i++) {
			if (tu_rng_below(&rng, 4) == 0)
				del_rand(txn, inflight);
			else
				put_rand(txn, inflight);
		}
		at_barrier = (c % every == 0) ? crash_images : NULL;
		tu_commit(txn);
		at_barrier = NULL;
		tu_model_free(committed);
		committed = inflight;
		inflight = NULL;
	}
	/* The real file is the last commit. */
	mapkv_close(env);
	ck_assert_rc(mapkv_open(&env, tu_path("db"), NULL), 0);
	tu_verify_db(env, 0, committed);
	mapkv_close(env);
	tu_model_free(committed);
	committed = NULL;
}

START_TEST(test_power_loss_at_every_barrier_keeps_a_commit)
{
	int commits = (int)tu_scale(160, 2000);
	run(0x90e71055, commits, 1, 8);
	fprintf(stderr,
		"check_powerloss: %llu barriers, %llu crash images opened "
		"and verified\n",
		(unsigned long long)n_barriers, (unsigned long long)n_images);
	tu_check(n_images >= (uint64_t)commits * 8,
		 "only %llu crash images were made",
		 (unsigned long long)n_images);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("powerloss");
	TCase *tc = tu_tcase(s, "powerloss", 900);
	tcase_add_test(tc, test_power_loss_at_every_barrier_keeps_a_commit);
	return tu_run_suite(s);
}
