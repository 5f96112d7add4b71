/*
 * fuzz_load.c: libFuzzer target: any bytes as dump text (the mdb_dump
 * format `mapkv load` and `.load` read). The text is loaded into a fresh
 * database. Whatever the bytes, the loader must return, never crash, hang
 * or leak. When it accepts the text, three more things must hold:
 *  - the database passes mapkv_check;
 *  - dumping every tree and loading that dump into a second database
 *    gives a database whose dump is byte-identical (the loader reads
 *    what the dumper writes, and nothing was lost or changed);
 *  - the same holds in the printable format (dump -p).
 *
 * Built with clang -fsanitize=fuzzer by `make fuzz`, and with replay.c as
 * an ordinary program that `make check` runs over tests/fuzz/corpus/load.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shell.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static FILE *devnull;

static void db_open(struct shell *sh, const char *path)
{
	mapkv_options o = {0};
	char lock[600];

	snprintf(lock, sizeof(lock), "%s-lock", path);
	unlink(path);
	unlink(lock);
	memset(sh, 0, sizeof *sh);
	o.flags = MAPKV_NOSYNC;
	if (mapkv_open(&sh->env, path, &o))
		abort(); /* the harness itself cannot work */
	sh->path = path;
	sh->out = devnull;
	sh->safe = 1;
}

static void db_close(struct shell *sh)
{
	char lock[600];

	snprintf(lock, sizeof(lock), "%s-lock", sh->path);
	if (sh->txn)
		mapkv_txn_abort(sh->txn);
	free(sh->tree);
	mapkv_close(sh->env);
	unlink(sh->path);
	unlink(lock);
}

static void must_be_sound(struct shell *sh)
{
	mapkv_txn *t;
	uint64_t problems = 0;

	if (mapkv_txn_begin(sh->env, MAPKV_RDONLY, &t))
		abort();
	if (mapkv_check(t, NULL, NULL, &problems) || problems)
		abort();
	mapkv_txn_abort(t);
}

/* The main tree and every named tree of @sh as dump text (malloc'd). */
static char *dump_all(struct shell *sh, int print, size_t *len)
{
	struct dump_opts o = {0};
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);

	if (!f)
		abort();
	o.print = print;
	o.all = 1;
	if (sh_dump(sh, f, &o))
		abort(); /* a sound database must dump */
	if (fclose(f))
		abort();
	return buf;
}

/* Load @text (several dumps in a row) into @sh. Returns sh_load's code. */
static int load_text(struct shell *sh, const char *text, size_t len)
{
	FILE *f;
	int rc;

	if (len == 0)
		f = fopen("/dev/null", "r");
	else
		f = fmemopen((void *)text, len, "r");
	if (!f)
		abort();
	rc = sh_load(sh, f, "fuzz", NULL, 0);
	fclose(f);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path1[512], path2[512];
	struct shell a, b;
	int print;

	if (!path1[0]) {
		const char *dir = getenv("TMPDIR");

		dir = dir && *dir ? dir : "/tmp";
		snprintf(path1, sizeof(path1), "%s/mapkv-fuzz-load-%d.db", dir,
			 (int)getpid());
		snprintf(path2, sizeof(path2), "%s/mapkv-fuzz-load2-%d.db", dir,
			 (int)getpid());
		devnull = fopen("/dev/null", "w");
		if (!devnull)
			abort();
	}
	db_open(&a, path1);
	if (load_text(&a, (const char *)data, size) == 0) {
		must_be_sound(&a);
		for (print = 0; print < 2; print++) {
			size_t n1, n2;
			char *d1 = dump_all(&a, print, &n1);

			db_open(&b, path2);
			/* the dump holds one section per tree: load each */
			if (load_text(&b, d1, n1))
				abort(); /* the loader refused the dumper */
			must_be_sound(&b);
			char *d2 = dump_all(&b, print, &n2);
			if (n1 != n2 || memcmp(d1, d2, n1))
				abort(); /* the round trip changed something */
			free(d1);
			free(d2);
			db_close(&b);
		}
	}
	db_close(&a);
	return 0;
}
