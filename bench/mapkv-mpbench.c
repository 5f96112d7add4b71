/*
 * mapkv-mpbench: several processes on one database.
 *
 * Measures, on a database of N keys:
 *  - read transactions per second (each: begin, 10 random gets, end) with
 *    1, 2 and 4 reader processes while one writer process commits
 *    (10 random puts per commit, durable);
 *  - the writer's commits per second alone and with those readers.
 * Each phase runs for -t seconds (default 3). Results go to stdout.
 *
 *   mapkv-mpbench [-n keys] [-t seconds] [-d dir]
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mapkv.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "mapkv-mpbench: %s: %s\n", what, mapkv_strerror(rc));
	exit(1);
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void key(char *k, uint64_t i)
{
	snprintf(k, 17, "%016llu", (unsigned long long)i);
}

/* Shared counters, one cache line each. */
struct counters {
	volatile uint64_t n[8][8];
	volatile int stop;
};

static void reader(const char *path, uint64_t nkeys, struct counters *c,
		   int slot)
{
	mapkv_env *env;
	int rc = mapkv_open(&env, path, NULL);
	if (rc)
		die("reader open", rc);
	uint64_t s = 0x9e3779b97f4a7c15ull ^ (uint64_t)(slot + 1);
	char k[17];
	while (!c->stop) {
		mapkv_txn *txn;
		if ((rc = mapkv_txn_begin(env, MAPKV_RDONLY, &txn)))
			die("reader begin", rc);
		for (int i = 0; i < 10; i++) {
			key(k, rnd(&s) % nkeys);
			mapkv_val kv = {k, 16}, v;
			if ((rc = mapkv_get(txn, 0, &kv, &v)))
				die("reader get", rc);
		}
		mapkv_txn_abort(txn);
		c->n[slot][0]++;
	}
	mapkv_close(env);
	_exit(0);
}

static void writer(const char *path, uint64_t nkeys, struct counters *c)
{
	mapkv_env *env;
	int rc = mapkv_open(&env, path, NULL);
	if (rc)
		die("writer open", rc);
	uint64_t s = 12345;
	char k[17], v[100];
	memset(v, 'v', sizeof(v));
	while (!c->stop) {
		mapkv_txn *txn;
		if ((rc = mapkv_txn_begin(env, 0, &txn)))
			die("writer begin", rc);
		for (int i = 0; i < 10; i++) {
			key(k, rnd(&s) % nkeys);
			mapkv_val kv = {k, 16}, vv = {v, 100};
			if ((rc = mapkv_put(txn, 0, &kv, &vv, 0)))
				die("writer put", rc);
		}
		if ((rc = mapkv_txn_commit(txn)))
			die("writer commit", rc);
		c->n[7][0]++;
	}
	mapkv_close(env);
	_exit(0);
}

/* One phase: @readers reader processes and (if @with_writer) a writer for
 * @secs seconds. */
static void phase(const char *path, uint64_t nkeys, int readers,
		  int with_writer, double secs, double *rps, double *cps)
{
	struct counters *c = mmap(NULL, sizeof(*c), PROT_READ | PROT_WRITE,
				  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (c == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	memset((void *)c, 0, sizeof(*c));
	pid_t pids[8];
	int np = 0;
	for (int i = 0; i < readers; i++)
		if ((pids[np++] = fork()) == 0)
			reader(path, nkeys, c, i);
	if (with_writer && (pids[np++] = fork()) == 0)
		writer(path, nkeys, c);
	usleep(200000); /* let them open and warm up */
	uint64_t r0 = 0, w0 = c->n[7][0];
	for (int i = 0; i < readers; i++)
		r0 += c->n[i][0];
	double t0 = now();
	usleep((useconds_t)(secs * 1e6));
	double t1 = now();
	uint64_t r1 = 0, w1 = c->n[7][0];
	for (int i = 0; i < readers; i++)
		r1 += c->n[i][0];
	c->stop = 1;
	for (int i = 0; i < np; i++) {
		int st;
		waitpid(pids[i], &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st)) {
			fprintf(stderr, "mapkv-mpbench: a process failed\n");
			exit(1);
		}
	}
	*rps = (r1 - r0) / (t1 - t0);
	*cps = (w1 - w0) / (t1 - t0);
	munmap((void *)c, sizeof(*c));
}

int main(int argc, char **argv)
{
	uint64_t nkeys = 100000;
	double secs = 3;
	const char *dir = NULL;
	int opt;
	while ((opt = getopt(argc, argv, "n:t:d:")) != -1) {
		if (opt == 'n')
			nkeys = strtoull(optarg, NULL, 10);
		else if (opt == 't')
			secs = atof(optarg);
		else if (opt == 'd')
			dir = optarg;
		else {
			fprintf(stderr,
				"usage: %s [-n keys] [-t seconds] "
				"[-d dir]\n",
				argv[0]);
			return 2;
		}
	}
	char tmpl[] = "/tmp/mapkv-mpbench.XXXXXX";
	if (!dir && !(dir = mkdtemp(tmpl))) {
		perror("mkdtemp");
		return 1;
	}
	char path[4096], lpath[4200];
	snprintf(path, sizeof(path), "%s/mp.mapkv", dir);
	snprintf(lpath, sizeof(lpath), "%s-lock", path);
	unlink(path);
	unlink(lpath);

	mapkv_env *env;
	int rc = mapkv_open(&env, path, NULL);
	if (rc)
		die("open", rc);
	mapkv_txn *txn;
	char k[17], v[100];
	memset(v, 'v', sizeof(v));
	for (uint64_t i = 0; i < nkeys; i += 10000) {
		if ((rc = mapkv_txn_begin(env, 0, &txn)))
			die("begin", rc);
		for (uint64_t j = i; j < i + 10000 && j < nkeys; j++) {
			key(k, j);
			mapkv_val kv = {k, 16}, vv = {v, 100};
			if ((rc = mapkv_put(txn, 0, &kv, &vv, 0)))
				die("put", rc);
		}
		if ((rc = mapkv_txn_commit(txn)))
			die("commit", rc);
	}
	mapkv_close(env);

	printf("mapkv-mpbench: %llu keys, %.1f s per phase; read txn = 10 "
	       "random gets; commit = 10 random puts, durable\n\n",
	       (unsigned long long)nkeys, secs);
	printf("| phase | read txns/s (all readers) | writer commits/s |\n");
	printf("|---|---:|---:|\n");
	double rps, cps;
	phase(path, nkeys, 0, 1, secs, &rps, &cps);
	printf("| writer alone | - | %.0f |\n", cps);
	int rs[] = {1, 2, 4};
	for (int i = 0; i < 3; i++) {
		phase(path, nkeys, rs[i], 1, secs, &rps, &cps);
		printf("| %d reader process%s + writer | %.0f | %.0f |\n",
		       rs[i], rs[i] > 1 ? "es" : "", rps, cps);
	}
	phase(path, nkeys, 4, 0, secs, &rps, &cps);
	printf("| 4 reader processes, no writer | %.0f | - |\n", rps);
	unlink(path);
	unlink(lpath);
	if (dir == tmpl)
		rmdir(dir);
	return 0;
}
