/*
 * tools.c: .stat, .check and .copy (and the `mapkv stat|check|copy`
 * sub-commands, which run them on a database opened read-only).
 */
#include <stdlib.h>
#include <string.h>

#include "shell.h"

struct stat_ctx {
	struct shell *sh;
	mapkv_txn *txn;
	int rc;
};

static void stat_tree(struct shell *sh, const char *name,
		      const mapkv_stat_info *si)
{
	FILE *f = sh->out;

	if (sh->mode == MODE_JSON) {
		fputc('{', f);
		if (name)
			out_json_member(f, "tree", name, strlen(name));
		else
			fputs("\"tree\":null", f);
		fprintf(f,
			",\"depth\":%u,\"entries\":%llu,\"branch_pages\":%llu,"
			"\"leaf_pages\":%llu,\"overflow_pages\":%llu}\n",
			si->depth, (unsigned long long)si->entries,
			(unsigned long long)si->branch_pages,
			(unsigned long long)si->leaf_pages,
			(unsigned long long)si->overflow_pages);
		return;
	}
	fputs("  ", f);
	if (name) {
		size_t l = strlen(name);

		out_text(f, name, l);
		while (l++ < 16)
			fputc(' ', f);
	} else {
		fputs("(main)          ", f);
	}
	fprintf(f, " %5u %10llu %8llu %8llu %8llu\n", si->depth,
		(unsigned long long)si->entries,
		(unsigned long long)si->branch_pages,
		(unsigned long long)si->leaf_pages,
		(unsigned long long)si->overflow_pages);
}

static int stat_named(void *ctx, const char *name)
{
	struct stat_ctx *sc = ctx;
	mapkv_stat_info si;
	mapkv_dbi dbi;
	int rc;

	rc = mapkv_dbi_open(sc->txn, name, 0, &dbi);
	if (rc == 0)
		rc = mapkv_stat(sc->txn, dbi, &si);
	if (rc) {
		sh_error_rc(sc->sh, rc, name);
		sc->rc = -1;
		return 0; /* go on with the other trees */
	}
	stat_tree(sc->sh, name, &si);
	return 0;
}

int sh_stat(struct shell *sh)
{
	struct stat_ctx sc = {sh, NULL, 0};
	mapkv_envinfo ei;
	mapkv_stat_info si;
	mapkv_txn *txn;
	int own, rc;
	FILE *f = sh->out;

	/* Before our own read transaction, so it does not count itself. */
	rc = mapkv_env_info(sh->env, &ei);
	if (rc && rc != MAPKV_CORRUPT) {
		sh_error_rc(sh, rc, "cannot read the environment");
		return -1;
	}
	if (rc)
		sh_error_rc(sh, rc, "the free-page records are damaged");
	if (!ei.map_growth)
		ei.map_growth = "unknown";
	if (sh->mode == MODE_JSON) {
		fputc('{', f);
		out_json_member(f, "file", sh->path, strlen(sh->path));
		fprintf(f,
			",\"page_size\":%u,\"file_size\":%llu,"
			"\"max_size\":%llu,\"last_txnid\":%llu,"
			"\"pages_used\":%llu,\"pages_free\":%llu,"
			"\"readers\":%u,\"max_readers\":%u,"
			"\"oldest_reader_pid\":%llu,"
			"\"oldest_reader_txnid\":%llu,"
			"\"oldest_reader_age_ms\":%llu,",
			ei.page_size, (unsigned long long)ei.file_size,
			(unsigned long long)ei.max_size,
			(unsigned long long)ei.last_txnid,
			(unsigned long long)ei.pages_used,
			(unsigned long long)ei.pages_free, ei.num_readers,
			ei.max_readers,
			(unsigned long long)ei.oldest_reader_pid,
			(unsigned long long)ei.oldest_reader_txnid,
			(unsigned long long)ei.oldest_reader_age_ms);
		out_json_member(f, "map_growth", ei.map_growth,
				strlen(ei.map_growth));
		fputs("}\n", f);
	} else {
		fputs("file              ", f);
		out_text(f, sh->path, strlen(sh->path));
		fprintf(f,
			"\npage size         %u\n"
			"file size         %llu\n"
			"max size          %llu\n"
			"last transaction  %llu\n"
			"pages used        %llu\n"
			"pages free        %llu\n"
			"readers           %u of %u\n"
			"map growth        %s\n",
			ei.page_size, (unsigned long long)ei.file_size,
			(unsigned long long)ei.max_size,
			(unsigned long long)ei.last_txnid,
			(unsigned long long)ei.pages_used,
			(unsigned long long)ei.pages_free, ei.num_readers,
			ei.max_readers, ei.map_growth);
		/* The reader that keeps the oldest pages from being reused. */
		if (ei.oldest_reader_pid)
			fprintf(f,
				"oldest reader     pid %llu, transaction %llu, "
				"for %llu ms\n",
				(unsigned long long)ei.oldest_reader_pid,
				(unsigned long long)ei.oldest_reader_txnid,
				(unsigned long long)ei.oldest_reader_age_ms);
		fprintf(f, "%-18s %5s %10s %8s %8s %8s\n", "trees", "depth",
			"entries", "branch", "leaf", "overflow");
	}
	if (sh_txn(sh, 0, &txn, &own))
		return -1;
	sc.txn = txn;
	rc = mapkv_stat(txn, 0, &si);
	if (rc) {
		sh_error_rc(sh, rc, "cannot read the main tree");
		sc.rc = -1;
	} else {
		stat_tree(sh, NULL, &si);
	}
	rc = mapkv_dbi_list(txn, stat_named, &sc);
	if (rc) {
		sh_error_rc(sh, rc, "cannot list the trees");
		sc.rc = -1;
	}
	return sh_txn_end(sh, txn, own, 0, sc.rc == 0 && rc == 0);
}

struct check_ctx {
	struct shell *sh;
	uint64_t n;
	struct progress pr;
};

static int check_problem(void *ctx, uint64_t pgno, const char *problem)
{
	struct check_ctx *cc = ctx;
	FILE *f = cc->sh->out;

	cc->n++;
	if (cc->sh->mode == MODE_JSON) {
		fprintf(f, "{\"page\":%llu,", (unsigned long long)pgno);
		out_json_member(f, "problem", problem, strlen(problem));
		fputs("}\n", f);
	} else if (pgno) {
		fprintf(f, "page %llu: %s\n", (unsigned long long)pgno,
			problem);
	} else {
		fprintf(f, "%s\n", problem);
	}
	return sh_interrupted;
}

/* Progress of a check on stderr (a terminal): quiet for the first second,
 * then at most four updates a second. */
static void check_progress(void *ctx, uint64_t done, uint64_t total)
{
	struct check_ctx *cc = ctx;
	struct progress *p = &cc->pr;
	double t;

	if (!p->on)
		return;
	t = sh_now();
	if (t - p->start < 1.0 || t - p->last < 0.25)
		return;
	fprintf(stderr, "\rcheck: %llu of %llu pages (%u%%)...",
		(unsigned long long)done, (unsigned long long)total,
		total ? (unsigned)(done * 100 / total) : 100);
	p->last = t;
}

int sh_check(struct shell *sh)
{
	struct check_ctx cc = {.sh = sh};
	mapkv_txn *txn;
	uint64_t problems = 0;
	int own, rc;

	if (sh_txn(sh, 0, &txn, &own))
		return -1;
	progress_start(&cc.pr, sh, "check");
	rc = mapkv_check_progress(txn, check_problem, check_progress, &cc,
				  &problems);
	progress_end(&cc.pr);
	sh_txn_end(sh, txn, own, 0, 1);
	if (rc && rc != MAPKV_CORRUPT) {
		sh_error_rc(sh, rc, "the check could not finish");
		return -1;
	}
	if (sh->mode == MODE_JSON)
		fprintf(sh->out, "{\"problems\":%llu}\n",
			(unsigned long long)problems);
	else if (rc == 0)
		fputs("ok\n", sh->out);
	else
		fprintf(sh->out, "%llu problem%s found\n",
			(unsigned long long)problems, problems == 1 ? "" : "s");
	return rc == 0 ? 0 : 1;
}

int sh_copy(struct shell *sh, const char *dst, int compact)
{
	int rc = mapkv_copy(sh->env, dst, compact ? MAPKV_COPY_COMPACT : 0);

	if (rc == MAPKV_EXISTS) {
		sh_error(sh, "copy: %s already exists", dst);
		return -1;
	}
	if (rc) {
		char what[512];

		snprintf(what, sizeof what, "copy to %s failed", dst);
		sh_error_rc(sh, rc, what);
		return -1;
	}
	return 0;
}
