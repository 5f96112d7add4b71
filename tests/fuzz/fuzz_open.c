/*
 * fuzz_open.c: libFuzzer target: any bytes as a database file. The file is
 * opened read-only and read every way (both cursor directions, a seek, the
 * integrity check, env_info). Whatever the bytes, every call must return
 * a code, never crash, hang or read outside the map (the sanitizers watch
 * the last).
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

	mapkv_env *env;
	mapkv_options o = {64u << 20, 0, MAPKV_RDONLY, 0, 0};
	if (mapkv_open(&env, path, &o) == 0) {
		mapkv_txn *t;
		if (mapkv_txn_begin(env, MAPKV_RDONLY, &t) == 0) {
			mapkv_cursor *c;
			mapkv_val k, v;
			if (mapkv_cursor_open(t, 0, &c) == 0) {
				/* Bounded: a damaged tree may not end. */
				for (int n = 0;
				     n < 100000 &&
				     mapkv_cursor_get(c, &k, &v, MAPKV_NEXT) ==
					     0;
				     n++)
					if (v.size) /* touch the value's end */
						(void)((volatile const uint8_t
								*)
							       v.data)[v.size -
								       1];
				for (int n = 0;
				     n < 100000 &&
				     mapkv_cursor_get(c, &k, &v, MAPKV_PREV) ==
					     0;
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
	unlink(path);
	unlink(lock);
	return 0;
}
