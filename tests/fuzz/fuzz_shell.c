/*
 * fuzz_shell.c: libFuzzer target: any bytes as shell input. The bytes are
 * first tokenized alone the way the interactive shell sees a line (more
 * input may follow), then run as a batch script against a fresh database
 * in safe mode (no dot-command may name a file), with errors not stopping
 * the run. Whatever the input, the shell must not crash, hang or leak,
 * and the database it leaves must pass mapkv_check: nothing a statement
 * does may damage it.
 *
 * Built with clang -fsanitize=fuzzer by `make fuzz`, and with replay.c as
 * an ordinary program that `make check` runs over tests/fuzz/corpus/shell.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shell.h"
#include "tokenize.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The tokenizer alone, as the interactive loop drives it (at_eof 0). */
static void tokens_only(const char *src, size_t len)
{
	struct tokenizer tz;
	struct token t;
	int rc;

	tok_init(&tz, src, len, 1, 0);
	for (;;) {
		size_t before = tz.pos;

		rc = tok_next(&tz, &t);
		if (rc == TOK_INCOMPLETE)
			break;
		if (rc == TOK_ERROR) {
			tok_free(&t);
			while (tz.pos < len && src[tz.pos] != '\n')
				tz.pos++;
			if (tz.pos >= len)
				break;
			continue;
		}
		tok_free(&t);
		if (t.type == TK_END && t.end == TOK_END_EOF)
			break;
		if (tz.pos == before && t.type != TK_END)
			abort(); /* no progress: the tokenizer would hang */
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[512];
	static FILE *devnull;
	char lock[600];
	mapkv_options o = {0};
	struct shell sh;
	size_t consumed;

	if (!path[0]) {
		const char *dir = getenv("TMPDIR");

		snprintf(path, sizeof(path), "%s/mapkv-fuzz-shell-%d.db",
			 dir && *dir ? dir : "/tmp", (int)getpid());
		devnull = fopen("/dev/null", "w");
		if (!devnull)
			abort(); /* the harness itself cannot work */
	}
	snprintf(lock, sizeof(lock), "%s-lock", path);
	unlink(path);
	unlink(lock);

	tokens_only((const char *)data, size);

	memset(&sh, 0, sizeof sh);
	o.flags = MAPKV_NOSYNC;
	if (mapkv_open(&sh.env, path, &o))
		abort();
	sh.path = path;
	sh.out = devnull;
	sh.safe = 1;
	sh.bail = 0;
	sh_run(&sh, (const char *)data, size, 1, 1, &consumed);
	if (consumed != size)
		abort(); /* at the end of input everything is consumed */
	if (sh.txn)
		mapkv_txn_abort(sh.txn);
	free(sh.tree);

	/* What the statements left must be a sound database. */
	mapkv_txn *t;
	uint64_t problems = 0;
	if (mapkv_txn_begin(sh.env, MAPKV_RDONLY, &t))
		abort();
	if (mapkv_check(t, NULL, NULL, &problems) || problems)
		abort();
	mapkv_txn_abort(t);
	mapkv_close(sh.env);
	unlink(path);
	unlink(lock);
	return 0;
}
