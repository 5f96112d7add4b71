/*
 * parse.c: runs shell input: splits it into statements, parses each with
 * the lemon parser, reports syntax errors with a caret, and hands parsed
 * statements to exec.c and dot-commands to dot.c.
 *
 * Each statement is parsed whole before anything runs, so a statement
 * with a syntax error changes nothing. The parser is cheap to create, so
 * a fresh one is used per attempt; that makes two things simple:
 *  - a keyword the grammar rejects is retried as a plain word (the
 *    statement is parsed again from its start with that token changed);
 *  - the "expected ..." list of a syntax error is found by replaying the
 *    tokens before the error followed by each terminal in turn.
 */
#include <stdlib.h>
#include <string.h>
#ifndef _WIN32
#include <sys/resource.h>
#else
#include <time.h>
#endif

#include "shell.h"
#include "tokenize.h"

/* The lemon-generated parser (grammar.c). */
void *sh_parserAlloc(void *(*alloc)(size_t));
void sh_parser(void *p, int major, const struct token *minor,
	       struct parse_ctx *ctx);
void sh_parserFree(void *p, void (*dealloc)(void *));

struct tokvec {
	struct token *v;
	size_t n, cap;
};

static void tokvec_clear(struct tokvec *tv)
{
	size_t i;

	for (i = 0; i < tv->n; i++)
		tok_free(&tv->v[i]);
	tv->n = 0;
}

static int tokvec_push(struct tokvec *tv, const struct token *t)
{
	if (tv->n == tv->cap) {
		size_t cap = tv->cap ? tv->cap * 2 : 16;
		struct token *v = realloc(tv->v, cap * sizeof *v);

		if (!v)
			return -1;
		tv->v = v;
		tv->cap = cap;
	}
	tv->v[tv->n++] = *t;
	return 0;
}

/* Feed toks[0, n) and, with @extra nonzero, one more token of that type.
 * Returns the index of the token that was refused, n when @extra was, or
 * (size_t)-1 when everything parsed; -2 when out of memory. */
static size_t feed(const struct token *toks, size_t n, int extra,
		   struct parse_ctx *ctx)
{
	static const struct token probe = {.val = "0", .vlen = 1};
	void *p = sh_parserAlloc(malloc);
	size_t i, res = (size_t)-1;

	if (!p)
		return (size_t)-2;
	memset(ctx, 0, sizeof *ctx);
	for (i = 0; i < n; i++) {
		sh_parser(p, toks[i].type, &toks[i], ctx);
		if (ctx->syntax_error) {
			res = i;
			goto out;
		}
	}
	if (extra) {
		sh_parser(p, extra, &probe, ctx);
		if (ctx->syntax_error)
			res = n;
		goto out;
	}
	sh_parser(p, 0, NULL, ctx);
	if (ctx->syntax_error)
		res = n ? n - 1 : 0;
out:
	sh_parserFree(p, free);
	return res;
}

/* ---------------------------------------------------------------- errors */

/* Print the source line holding @t with a caret under it. */
static void show_caret(const char *src, size_t len, const struct token *t)
{
	size_t e = t->line_off, i, col = 0;

	while (e < len && src[e] != '\n')
		e++;
	fputs("  ", stderr);
	for (i = t->line_off; i < e; i++) {
		unsigned char c = (unsigned char)src[i];

		/* one column per character: tabs and controls become a
		 * blank, UTF-8 continuation bytes take no column */
		if (c < 0x20 || c == 0x7f)
			fputc(' ', stderr);
		else
			fputc(c, stderr);
		if (i < t->off && (c & 0xc0) != 0x80)
			col++;
	}
	fputs("\n  ", stderr);
	while (col--)
		fputc(' ', stderr);
	fputs("^\n", stderr);
}

static void report(struct shell *sh, const char *src, size_t len,
		   const struct token *t, const char *msg)
{
	sh->line = t->line;
	sh_error(sh, "%s", msg);
	show_caret(src, len, t);
}

/* How the offending token reads in a message. */
static void describe(char *buf, size_t size, const char *src,
		     const struct token *t)
{
	if (t->type == TK_END) {
		snprintf(buf, size, "%s",
			 t->end == TOK_END_SEMI      ? "';'"
			 : t->end == TOK_END_NEWLINE ? "end of line"
						     : "end of input");
		return;
	}
	if (t->len > 40)
		snprintf(buf, size, "\"%.37s...\"", src + t->off);
	else
		snprintf(buf, size, "\"%.*s\"", (int)t->len, src + t->off);
}

/* What a literal at position i stands for, from the tokens before it. */
static const char *literal_role(const struct token *toks, size_t i)
{
	int prev = i > 0 ? toks[i - 1].type : 0;

	switch (prev) {
	case TK_PUT:
	case TK_GET:
	case TK_EXISTS:
	case TK_DEL:
	case TK_FROM:
	case TK_TO:
		return "a key";
	case TK_PREFIX:
		return "a prefix";
	case TK_USE:
	case TK_TREE:
		return "a tree name";
	}
	if (i >= 2 && toks[i - 2].type == TK_PUT)
		return "a value";
	return "a literal";
}

/* Build "A, B or C" from the terminals that may follow toks[0, i): each
 * is tried in turn. Literal kinds are named once, by their role. */
static void expected(char *buf, size_t size, const struct token *toks, size_t i)
{
	const char *items[40];
	struct parse_ctx ctx;
	size_t n = 0, k, l;

	if (feed(toks, i, TK_STRING, &ctx) == (size_t)-1)
		items[n++] = literal_role(toks, i);
	else if (feed(toks, i, TK_INTEGER, &ctx) == (size_t)-1)
		items[n++] = "an integer";
	for (k = 0; k < tok_nkeywords; k++)
		if (feed(toks, i, tok_keywords[k].code, &ctx) == (size_t)-1)
			items[n++] = tok_keywords[k].name;
	if (feed(toks, i, TK_STAR, &ctx) == (size_t)-1)
		items[n++] = "'*'";
	if (i > 0 && feed(toks, i, TK_END, &ctx) == (size_t)-1)
		items[n++] = "the end of the statement";
	if (i == 0)
		items[n++] = "a dot-command";
	buf[0] = '\0';
	for (k = 0; k < n; k++) {
		l = strlen(buf);
		snprintf(buf + l, size - l, "%s%s",
			 k == 0       ? ""
			 : k + 1 == n ? " or "
				      : ", ",
			 items[k]);
	}
}

/* Parse one statement (toks ends with its TK_END). Returns 0 with ctx
 * filled, or -1 after reporting the error. */
static int parse_stmt(struct shell *sh, const char *src, size_t len,
		      struct token *toks, size_t n, struct parse_ctx *ctx)
{
	char msg[1024], exp[768], found[64];
	size_t at;

	for (;;) {
		at = feed(toks, n, 0, ctx);
		if (at == (size_t)-1)
			break;
		if (at == (size_t)-2) {
			sh->line = toks[0].line;
			sh_error(sh, "out of memory");
			return -1;
		}
		if (toks[at].kw && toks[at].type != TK_WORD) {
			toks[at].type = TK_WORD; /* retry as a plain word */
			continue;
		}
		expected(exp, sizeof exp, toks, at);
		describe(found, sizeof found, src, &toks[at]);
		snprintf(msg, sizeof msg, "syntax error at %s: expected %s",
			 found, exp);
		/* A keyword just before, taken as a word, may be the real
		 * culprit (SCAN FROM LIMIT 3): say how it was read. */
		if (at > 0 && toks[at - 1].kw && toks[at - 1].type == TK_WORD) {
			size_t l = strlen(msg);

			snprintf(msg + l, sizeof msg - l,
				 " (%.*s was read as %s)",
				 (int)toks[at - 1].len, src + toks[at - 1].off,
				 literal_role(toks, at - 1));
		}
		report(sh, src, len, &toks[at], msg);
		return -1;
	}
	if (ctx->sem_tok) {
		report(sh, src, len, ctx->sem_tok, ctx->sem_msg);
		return -1;
	}
	return 0;
}

static double cpu_seconds(void)
{
#ifdef _WIN32
	/* No getrusage: clock() (on Windows, time since the process began). */
	return (double)clock() / CLOCKS_PER_SEC;
#else
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
#endif
}

/* Run one complete statement or dot-command. */
static int run_one(struct shell *sh, const char *src, size_t len,
		   struct tokvec *tv)
{
	struct token *toks = tv->v;
	struct parse_ctx ctx;
	double t0 = 0, c0 = 0;
	int rc, timed = sh->timer; /* not .timer on itself */

	if (tv->n == 1)
		return 0; /* empty statement */
	sh->line = toks[0].line;
	if (timed) {
		t0 = sh_now();
		c0 = cpu_seconds();
	}
	if (toks[0].type == TK_WORD && toks[0].val[0] == '.') {
		rc = sh_dot(sh, toks, tv->n);
	} else {
		if (parse_stmt(sh, src, len, toks, tv->n, &ctx))
			return -1;
		sh->line = toks[0].line;
		rc = sh_exec(sh, &ctx.st);
	}
	if (timed && sh->timer) {
		fflush(sh->out);
		fprintf(stderr, "time: real %.6f s, cpu %.6f s\n",
			sh_now() - t0, cpu_seconds() - c0);
	}
	return rc;
}

int sh_run(struct shell *sh, const char *src, size_t len, unsigned line,
	   int at_eof, size_t *consumed)
{
	struct tokenizer tz;
	struct tokvec tv = {0};
	struct token t;
	int status = SH_OK, rc;

	tok_init(&tz, src, len, line, at_eof);
	*consumed = 0;
	while (!sh->quit) {
		size_t start = tz.pos;
		unsigned start_line = tz.line;
		size_t start_line_off = tz.line_off;

		tokvec_clear(&tv);
		for (;;) {
			rc = tok_next(&tz, &t);
			if (rc == TOK_INCOMPLETE) {
				/* rewind: the statement reruns with more */
				tz.pos = start;
				tz.line = start_line;
				tz.line_off = start_line_off;
				*consumed = start;
				tokvec_clear(&tv);
				free(tv.v);
				return SH_NEED_MORE;
			}
			if (rc == TOK_ERROR) {
				report(sh, src, len, &t, tz.errmsg);
				tok_free(&t);
				/* skip the rest of the line */
				while (tz.pos < len && src[tz.pos] != '\n')
					tz.pos++;
				break;
			}
			if (tokvec_push(&tv, &t)) {
				tok_free(&t);
				sh_error(sh, "out of memory");
				rc = TOK_ERROR;
				break;
			}
			if (t.type == TK_END)
				break;
		}
		if (rc == TOK_OK && run_one(sh, src, len, &tv) == 0) {
			if (t.end == TOK_END_EOF)
				break;
			continue;
		}
		status = SH_ERROR;
		if (sh->bail || tz.pos >= len)
			break;
	}
	tokvec_clear(&tv);
	free(tv.v);
	*consumed = len;
	return status;
}
