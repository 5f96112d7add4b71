/*
 * replay.c: run a fuzz target over every file of its corpus, without
 * libFuzzer (so `make check` replays the seeds and every past crasher with
 * the ordinary compiler, and under ASan in `make check-asan`).
 *
 *   replay [DIR|FILE...]   default: $MAPKV_TEST_SRCDIR/fuzz/corpus/CORPUS
 *
 * CORPUS is the target's name (open, shell, load), given at build time.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef CORPUS
#define CORPUS "open"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int one(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		perror(path);
		return -1;
	}
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
	if (!buf || (n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n)) {
		fprintf(stderr, "%s: cannot read\n", path);
		fclose(f);
		free(buf);
		return -1;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(buf, (size_t)n);
	free(buf);
	return 0;
}

static int walk(const char *path, unsigned *count)
{
	struct stat st;
	if (stat(path, &st)) {
		perror(path);
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		(*count)++;
		return one(path);
	}
	DIR *d = opendir(path);
	if (!d) {
		perror(path);
		return -1;
	}
	struct dirent *e;
	int rc = 0;
	while ((e = readdir(d)) && !rc) {
		if (e->d_name[0] == '.')
			continue;
		char sub[4096];
		snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
		rc = walk(sub, count);
	}
	closedir(d);
	return rc;
}

int main(int argc, char **argv)
{
	unsigned count = 0;
	int rc = 0;
	if (argc > 1) {
		for (int i = 1; i < argc && !rc; i++)
			rc = walk(argv[i], &count);
	} else {
		const char *src = getenv("MAPKV_TEST_SRCDIR");
		char dir[4096];
		snprintf(dir, sizeof(dir), "%s/fuzz/corpus/" CORPUS,
			 src ? src : "tests");
		rc = walk(dir, &count);
	}
	if (rc)
		return 1;
	if (count == 0) {
		fprintf(stderr, "replay: no inputs found\n");
		return 1;
	}
	/* The plain closing line that test runners read. */
	printf("replay: %u passed, 0 failed\n", count);
	return 0;
}
