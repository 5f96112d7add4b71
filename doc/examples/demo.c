/*
 * demo.c: a tour of the mapkv API, using nothing but include/mapkv.h.
 *
 * Opens (or creates) demo.mapkv in the current folder, writes 1000 keys to
 * the main tree and a few to a named tree "fruits" in one transaction,
 * reads some back in a read transaction, walks "fruits" with a cursor and
 * prints the size of the file. Every error is reported with
 * mapkv_strerror() and makes the program exit with status 1.
 *
 * Build: it is built with the library (doc/examples/demo); by hand against
 * an installed mapkv:  cc demo.c $(pkg-config --cflags --libs mapkv)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mapkv.h"

#define DEMO_FILE "demo.mapkv"
#define DEMO_KEYS 1000

/* Print what failed and why; returns rc so callers can write
 * `return fail("...", rc);`. */
static int fail(const char *what, int rc)
{
	fprintf(stderr, "demo: %s: %s\n", what, mapkv_strerror(rc));
	return rc;
}

static mapkv_val str_val(const char *s)
{
	mapkv_val v = {s, strlen(s)};
	return v;
}

/* One write transaction: DEMO_KEYS keys in the main tree, a few fruits in
 * the named tree. Either all of it is committed or none of it. */
static int write_data(mapkv_env *env)
{
	static const char *const fruits[][2] = {
		{"cherry", "red"},  {"apple", "green"}, {"banana", "yellow"},
		{"plum", "purple"}, {"kiwi", "brown"},
	};
	mapkv_txn *txn;
	mapkv_dbi fdbi;
	char kbuf[32], vbuf[64];
	size_t i;
	int rc;

	rc = mapkv_txn_begin(env, 0, &txn);
	if (rc)
		return fail("mapkv_txn_begin (write)", rc);

	for (i = 0; i < DEMO_KEYS; i++) {
		mapkv_val key, val;

		snprintf(kbuf, sizeof kbuf, "key:%06zu", i);
		snprintf(vbuf, sizeof vbuf, "value number %zu", i);
		key = str_val(kbuf);
		val = str_val(vbuf);
		rc = mapkv_put(txn, 0, &key, &val, 0);
		if (rc) {
			fail("mapkv_put (main tree)", rc);
			goto abort;
		}
	}

	rc = mapkv_dbi_open(txn, "fruits", MAPKV_CREATE, &fdbi);
	if (rc) {
		fail("mapkv_dbi_open(\"fruits\", MAPKV_CREATE)", rc);
		goto abort;
	}
	for (i = 0; i < sizeof fruits / sizeof fruits[0]; i++) {
		mapkv_val key = str_val(fruits[i][0]);
		mapkv_val val = str_val(fruits[i][1]);

		rc = mapkv_put(txn, fdbi, &key, &val, 0);
		if (rc) {
			fail("mapkv_put (fruits)", rc);
			goto abort;
		}
	}

	printf("writing %d keys to the main tree and %zu to \"fruits\" "
	       "as transaction %llu\n",
	       DEMO_KEYS, sizeof fruits / sizeof fruits[0],
	       (unsigned long long)mapkv_txn_id(txn));

	/* The commit frees the transaction whatever it returns. */
	rc = mapkv_txn_commit(txn);
	if (rc)
		return fail("mapkv_txn_commit", rc);
	printf("committed\n");
	return 0;

abort:
	mapkv_txn_abort(txn);
	return rc;
}

/* One read transaction: a few lookups, then a cursor over "fruits". */
static int read_data(mapkv_env *env)
{
	static const char *const lookups[] = {"key:000000", "key:000500",
					      "key:000999", "key:001000"};
	mapkv_txn *txn;
	mapkv_cursor *cur;
	mapkv_dbi fdbi;
	mapkv_val key, val;
	mapkv_stat_info st;
	size_t i;
	int rc;

	rc = mapkv_txn_begin(env, MAPKV_RDONLY, &txn);
	if (rc)
		return fail("mapkv_txn_begin (read)", rc);

	for (i = 0; i < sizeof lookups / sizeof lookups[0]; i++) {
		key = str_val(lookups[i]);
		rc = mapkv_get(txn, 0, &key, &val);
		if (rc == MAPKV_NOTFOUND) {
			printf("get %s -> (not found)\n", lookups[i]);
		} else if (rc) {
			fail("mapkv_get", rc);
			goto out;
		} else {
			/* val points into the map: print it with its length,
			 * it is not NUL-terminated. */
			printf("get %s -> \"%.*s\"\n", lookups[i],
			       (int)val.size, (const char *)val.data);
		}
	}

	rc = mapkv_stat(txn, 0, &st);
	if (rc) {
		fail("mapkv_stat", rc);
		goto out;
	}
	printf("main tree: %llu entries, depth %u, %llu leaf pages\n",
	       (unsigned long long)st.entries, (unsigned)st.depth,
	       (unsigned long long)st.leaf_pages);

	/* Handles stay valid for the life of the environment; looking the
	 * tree up by name again shows how a reader finds it. */
	rc = mapkv_dbi_open(txn, "fruits", 0, &fdbi);
	if (rc) {
		fail("mapkv_dbi_open(\"fruits\")", rc);
		goto out;
	}
	rc = mapkv_cursor_open(txn, fdbi, &cur);
	if (rc) {
		fail("mapkv_cursor_open", rc);
		goto out;
	}
	printf("fruits, in key order:\n");
	while ((rc = mapkv_cursor_get(cur, &key, &val, MAPKV_NEXT)) == 0)
		printf("  %.*s = %.*s\n", (int)key.size, (const char *)key.data,
		       (int)val.size, (const char *)val.data);
	mapkv_cursor_close(cur);
	if (rc != MAPKV_NOTFOUND) {
		fail("mapkv_cursor_get", rc);
		goto out;
	}
	rc = 0;

out:
	/* A read transaction has nothing to commit; abort just ends it. */
	mapkv_txn_abort(txn);
	return rc;
}

int main(void)
{
	mapkv_env *env;
	mapkv_envinfo info;
	int rc;

	printf("mapkv %s demo\n", mapkv_version());

	rc = mapkv_open(&env, DEMO_FILE, NULL);
	if (rc) {
		fail("mapkv_open(\"" DEMO_FILE "\")", rc);
		return EXIT_FAILURE;
	}
	printf("opened %s\n", DEMO_FILE);

	rc = write_data(env);
	if (rc == 0)
		rc = read_data(env);
	if (rc == 0) {
		rc = mapkv_env_info(env, &info);
		if (rc)
			fail("mapkv_env_info", rc);
		else
			printf("%s: %llu bytes (%llu pages of %u bytes in use, "
			       "last transaction %llu)\n",
			       DEMO_FILE, (unsigned long long)info.file_size,
			       (unsigned long long)info.pages_used,
			       (unsigned)info.page_size,
			       (unsigned long long)info.last_txnid);
	}

	mapkv_close(env);
	return rc ? EXIT_FAILURE : EXIT_SUCCESS;
}
