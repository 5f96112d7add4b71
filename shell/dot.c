/*
 * dot.c: the shell's dot-commands (.help, .mode, .dump ...). A dot-command
 * takes the rest of its line (up to ';' or the end of the line); its
 * arguments are tokens like everywhere else, so a file name with blanks
 * is written in single quotes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "shell.h"
#include "tokenize.h"

static const char help_text[] =
	"Statements (end with ';' or a new line; keywords in any case):\n"
	"  PUT key value            store value under key\n"
	"  GET key                  print the value of key\n"
	"  EXISTS key               print 1 if key exists, else 0\n"
	"  DEL key                  delete key\n"
	"  SCAN [clauses]           print keys and values in key order\n"
	"  COUNT [clauses]          print how many keys the clauses select\n"
	"  DEL clauses | DEL *      delete a range (or all) and print how "
	"many\n"
	"    clauses: FROM key, TO key (both inclusive), PREFIX p, LIMIT n,\n"
	"             REVERSE, in any order\n"
	"  BEGIN, COMMIT, ROLLBACK  a transaction over several statements\n"
	"                           (without BEGIN each statement is one)\n"
	"  USE tree | USE MAIN      work in a named tree, or the main one\n"
	"  CREATE TREE name, DROP TREE name, TREES\n"
	"Literals: 'text' ('' is a quote), x'68656c6c6f', words, integers.\n"
	"A keyword used as a key must be quoted: GET 'from'. -- starts a "
	"comment.\n"
	"\n"
	"Dot-commands:\n"
	"  .help                    this text\n"
	"  .mode [text|hex|json|csv] how results are printed\n"
	"  .timer [on|off]          print the time each statement takes\n"
	"  .bail [on|off]           stop at the first error\n"
	"  .stat                    page size, file size, pages, trees, "
	"readers\n"
	"  .check                   check the whole database, list problems\n"
	"  .dump [-a] [-p] [-s TREE] [FILE]\n"
	"                           write the current tree (-a: all trees) in\n"
	"                           the mdb_dump text format (-p: printable)\n"
	"  .load [-N] [-s TREE] FILE  load a dump (-N: keep existing keys)\n"
	"  .copy [-c] FILE          consistent copy of the database "
	"(-c: compact)\n"
	"  .read FILE               run the statements in FILE\n"
	"  .quit                    leave (also .exit or end of input)\n";

/* The text an argument token stands for, as a C string (malloc'd). */
static char *arg(const struct token *t)
{
	char *s = malloc(t->vlen + 1);

	if (s) {
		memcpy(s, t->val, t->vlen);
		s[t->vlen] = '\0';
	}
	return s;
}

static int is(const struct token *t, const char *w)
{
	return t->vlen == strlen(w) && memcmp(t->val, w, t->vlen) == 0;
}

static int on_off(struct shell *sh, const char *cmd, struct token *toks,
		  size_t nargs, int *flag)
{
	if (nargs == 0) {
		fprintf(sh->out, "%s\n", *flag ? "on" : "off");
		return 0;
	}
	if (nargs == 1 && (is(&toks[1], "on") || is(&toks[1], "off"))) {
		*flag = is(&toks[1], "on");
		return 0;
	}
	sh_error(sh, "usage: %s on|off", cmd);
	return -1;
}

static int dot_mode(struct shell *sh, struct token *toks, size_t nargs)
{
	static const char *names[] = {"text", "hex", "json", "csv"};
	size_t i;

	if (nargs == 0) {
		fprintf(sh->out, "%s\n", names[sh->mode]);
		return 0;
	}
	for (i = 0; nargs == 1 && i < 4; i++)
		if (is(&toks[1], names[i])) {
			sh->mode = (enum out_mode)i;
			return 0;
		}
	sh_error(sh, "usage: .mode text|hex|json|csv");
	return -1;
}

/* .dump [-a] [-p] [-s TREE] [FILE] */
static int dot_dump(struct shell *sh, struct token *toks, size_t nargs)
{
	struct dump_opts o = {0};
	char *tree = NULL, *file = NULL;
	FILE *f = sh->out;
	size_t i;
	int rc = -1;

	for (i = 1; i <= nargs; i++) {
		if (is(&toks[i], "-a")) {
			o.all = 1;
		} else if (is(&toks[i], "-p")) {
			o.print = 1;
		} else if (is(&toks[i], "-s") && i < nargs && !tree) {
			tree = arg(&toks[++i]);
		} else if (!file && i == nargs && toks[i].vlen &&
			   !(toks[i].type == TK_WORD &&
			     toks[i].val[0] == '-')) {
			file = arg(&toks[i]);
		} else {
			sh_error(sh, "usage: .dump [-a] [-p] [-s TREE] [FILE]");
			goto out;
		}
	}
	if (o.all && tree) {
		sh_error(sh, ".dump: -a and -s exclude each other");
		goto out;
	}
	o.tree = tree;
	if (file && sh->safe) {
		sh_error(sh, ".dump: files cannot be named in safe mode");
		goto out;
	}
	if (file) {
		f = fopen(file, "w");
		if (!f) {
			sh_error(sh, ".dump: cannot create %s: %s", file,
				 strerror(errno));
			goto out;
		}
	}
	rc = sh_dump(sh, f, &o);
	if (file && fclose(f) != 0 && rc == 0) {
		sh_error(sh, ".dump: cannot write %s: %s", file,
			 strerror(errno));
		rc = -1;
	}
out:
	free(tree);
	free(file);
	return rc;
}

/* .load [-N] [-s TREE] FILE */
static int dot_load(struct shell *sh, struct token *toks, size_t nargs)
{
	char *tree = NULL, *file = NULL;
	int nooverwrite = 0, rc = -1;
	size_t i;
	FILE *f;

	for (i = 1; i <= nargs; i++) {
		if (is(&toks[i], "-N")) {
			nooverwrite = 1;
		} else if (is(&toks[i], "-s") && i < nargs && !tree) {
			tree = arg(&toks[++i]);
		} else if (!file && i == nargs && toks[i].vlen) {
			file = arg(&toks[i]);
		} else {
			break;
		}
	}
	if (i <= nargs || !file) {
		sh_error(sh, "usage: .load [-N] [-s TREE] FILE");
		goto out;
	}
	f = fopen(file, "r");
	if (!f) {
		sh_error(sh, ".load: cannot open %s: %s", file,
			 strerror(errno));
		goto out;
	}
	rc = sh_load(sh, f, file, tree, nooverwrite);
	fclose(f);
out:
	free(tree);
	free(file);
	return rc;
}

static int dot_copy(struct shell *sh, struct token *toks, size_t nargs)
{
	int compact = nargs == 2 && is(&toks[1], "-c");
	char *file;
	int rc;

	if (nargs != 1 + (size_t)compact || toks[nargs].vlen == 0) {
		sh_error(sh, "usage: .copy [-c] FILE");
		return -1;
	}
	file = arg(&toks[nargs]);
	if (!file) {
		sh_error(sh, "out of memory");
		return -1;
	}
	rc = sh_copy(sh, file, compact);
	free(file);
	return rc;
}

/* .read FILE: the file's statements run as if typed, stopping at the
 * first error when bail is on. */
static int dot_read(struct shell *sh, struct token *toks, size_t nargs)
{
	char *file, *buf = NULL;
	size_t len = 0, consumed;
	unsigned line = sh->line;
	const char *input = sh->input;
	FILE *f, *m;
	int c, rc, interactive = sh->interactive;

	if (nargs != 1) {
		sh_error(sh, "usage: .read FILE");
		return -1;
	}
	if (sh->read_depth >= 16) { /* a file reading itself */
		sh_error(sh, ".read: files nested too deeply");
		return -1;
	}
	file = arg(&toks[1]);
	if (!file || !(f = fopen(file, "r"))) {
		sh_error(sh, ".read: cannot open %s: %s", file ? file : "",
			 strerror(errno));
		free(file);
		return -1;
	}
	m = open_memstream(&buf, &len);
	while (m && (c = getc(f)) != EOF)
		putc(c, m);
	fclose(f);
	if (!m || fclose(m)) {
		sh_error(sh, "out of memory");
		free(file);
		return -1;
	}
	/* Errors inside name their line in the file. */
	sh->interactive = 0;
	sh->input = file;
	sh->read_depth++;
	rc = sh_run(sh, buf, len, 1, 1, &consumed);
	sh->read_depth--;
	sh->input = input;
	sh->interactive = interactive;
	sh->line = line;
	free(buf);
	free(file);
	return rc == SH_OK ? 0 : -1;
}

int sh_dot(struct shell *sh, struct token *toks, size_t n)
{
	const struct token *cmd = &toks[0];
	size_t nargs = n - 2; /* minus the command and the END */

	if (is(cmd, ".help")) {
		fputs(help_text, sh->out);
		return 0;
	}
	if (is(cmd, ".mode"))
		return dot_mode(sh, toks, nargs);
	if (is(cmd, ".timer"))
		return on_off(sh, ".timer", toks, nargs, &sh->timer);
	if (is(cmd, ".bail"))
		return on_off(sh, ".bail", toks, nargs, &sh->bail);
	if (is(cmd, ".quit") || is(cmd, ".exit")) {
		sh->quit = 1;
		return 0;
	}
	if (is(cmd, ".stat") && nargs == 0)
		return sh_stat(sh);
	if (is(cmd, ".check") && nargs == 0)
		return sh_check(sh) == 0 ? 0 : -1;
	if (sh->safe &&
	    (is(cmd, ".load") || is(cmd, ".copy") || is(cmd, ".read"))) {
		sh_error(sh, "%.*s: files cannot be named in safe mode",
			 (int)cmd->vlen, cmd->val);
		return -1;
	}
	if (is(cmd, ".dump"))
		return dot_dump(sh, toks, nargs);
	if (is(cmd, ".load"))
		return dot_load(sh, toks, nargs);
	if (is(cmd, ".copy"))
		return dot_copy(sh, toks, nargs);
	if (is(cmd, ".read"))
		return dot_read(sh, toks, nargs);
	if (is(cmd, ".stat") || is(cmd, ".check")) {
		sh_error(sh, "usage: %.*s", (int)cmd->vlen, cmd->val);
		return -1;
	}
	sh_error(sh, "unknown command %.*s: .help lists the commands",
		 (int)cmd->vlen, cmd->val);
	return -1;
}
