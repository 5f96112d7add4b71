/*
 * tokenize.c: turns shell input into tokens (see tokenize.h for the
 * lexical rules). The tokenizer works on a buffer that may not yet hold the
 * whole statement: a string left open at the end of the buffer is reported
 * as TOK_INCOMPLETE so the interactive shell can ask for another line
 * instead of failing.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tokenize.h"

const struct tok_keyword tok_keywords[] = {
	{"BEGIN", TK_BEGIN},
	{"COMMIT", TK_COMMIT},
	{"COUNT", TK_COUNT},
	{"CREATE", TK_CREATE},
	{"DEL", TK_DEL},
	{"DROP", TK_DROP},
	{"EXISTS", TK_EXISTS},
	{"FROM", TK_FROM},
	{"GET", TK_GET},
	{"LIMIT", TK_LIMIT},
	{"MAIN", TK_MAIN},
	{"PREFIX", TK_PREFIX},
	{"PUT", TK_PUT},
	{"REVERSE", TK_REVERSE},
	{"ROLLBACK", TK_ROLLBACK},
	{"SCAN", TK_SCAN},
	{"TO", TK_TO},
	{"TREE", TK_TREE},
	{"TREES", TK_TREES},
	{"USE", TK_USE},
};
const size_t tok_nkeywords = sizeof tok_keywords / sizeof tok_keywords[0];

int tok_keyword(const char *w, size_t n)
{
	size_t i;

	for (i = 0; i < tok_nkeywords; i++)
		if (strlen(tok_keywords[i].name) == n &&
		    strncasecmp(tok_keywords[i].name, w, n) == 0)
			return tok_keywords[i].code;
	return 0;
}

void tok_init(struct tokenizer *tz, const char *src, size_t len, unsigned line,
	      int at_eof)
{
	memset(tz, 0, sizeof *tz);
	tz->src = src;
	tz->len = len;
	tz->line = line;
	tz->at_eof = at_eof;
}

void tok_free(struct token *t)
{
	free(t->buf);
	t->buf = NULL;
}

static int is_blank(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/* Bytes that may appear in a bare word: everything visible except the
 * quotes and ';' (UTF-8 included, so words in any script work). */
static int is_word_byte(unsigned char c)
{
	return c > 0x20 && c != 0x7f && c != ';' && c != '\'' && c != '"';
}

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static void start_token(struct tokenizer *tz, struct token *t, size_t off)
{
	memset(t, 0, sizeof *t);
	t->off = off;
	t->line = tz->line;
	t->line_off = tz->line_off;
}

/* 'string' starting at tz->pos. Two passes: find the end (counting lines
 * and doubled quotes), then copy, so the copy is allocated once. */
static int read_string(struct tokenizer *tz, struct token *t)
{
	const char *s = tz->src;
	size_t p = tz->pos + 1, n = 0, k;
	unsigned lines = 0;
	size_t last_nl = 0;

	for (;;) {
		if (p >= tz->len) {
			if (!tz->at_eof)
				return TOK_INCOMPLETE;
			t->len = tz->len - t->off;
			tz->errmsg = "unterminated string: a ' is missing";
			return TOK_ERROR;
		}
		if (s[p] == '\'') {
			if (p + 1 < tz->len && s[p + 1] == '\'') {
				p += 2;
				n++;
				continue;
			}
			if (p + 1 >= tz->len && !tz->at_eof)
				return TOK_INCOMPLETE; /* '' may be split */
			break;
		}
		if (s[p] == '\n') {
			lines++;
			last_nl = p;
		}
		p++;
		n++;
	}
	t->buf = malloc(n + 1);
	if (!t->buf) {
		tz->errmsg = "out of memory";
		return TOK_ERROR;
	}
	for (k = 0, p = tz->pos + 1; k < n; k++) {
		t->buf[k] = s[p];
		p += s[p] == '\'' ? 2 : 1;
	}
	t->buf[n] = '\0';
	t->type = TK_STRING;
	t->val = t->buf;
	t->vlen = n;
	t->len = p + 1 - t->off;
	tz->pos = p + 1;
	if (lines) {
		tz->line += lines;
		tz->line_off = last_nl + 1;
	}
	return TOK_OK;
}

/* x'hex' starting at tz->pos (which points at the x). */
static int read_hex(struct tokenizer *tz, struct token *t)
{
	const char *s = tz->src;
	size_t p = tz->pos + 2, n, k;

	while (p < tz->len && hexval((unsigned char)s[p]) >= 0)
		p++;
	t->len = p - t->off;
	if (p >= tz->len) {
		if (!tz->at_eof)
			return TOK_INCOMPLETE;
		tz->errmsg = "unterminated hex literal: a ' is missing";
		return TOK_ERROR;
	}
	if (s[p] != '\'') {
		t->off = p; /* point the caret at the bad byte */
		t->len = 1;
		tz->errmsg =
			s[p] == '\n'
				? "unterminated hex literal: a ' is missing"
				: "a hex literal holds only the digits "
				  "0-9 and a-f";
		return TOK_ERROR;
	}
	n = p - (tz->pos + 2);
	t->len = p + 1 - t->off;
	if (n % 2) {
		tz->errmsg = "a hex literal needs an even number of digits";
		return TOK_ERROR;
	}
	t->buf = malloc(n / 2 + 1);
	if (!t->buf) {
		tz->errmsg = "out of memory";
		return TOK_ERROR;
	}
	for (k = 0; k < n / 2; k++)
		t->buf[k] =
			(char)(hexval((unsigned char)s[tz->pos + 2 + 2 * k])
				       << 4 |
			       hexval((unsigned char)s[tz->pos + 3 + 2 * k]));
	t->type = TK_HEX;
	t->val = t->buf;
	t->vlen = n / 2;
	tz->pos = p + 1;
	return TOK_OK;
}

int tok_next(struct tokenizer *tz, struct token *t)
{
	const char *s = tz->src;
	size_t p;
	unsigned char c;
	int rc;

	for (;;) {
		while (tz->pos < tz->len && is_blank((unsigned char)s[tz->pos]))
			tz->pos++;
		/* "--" starts a comment only where a token could start. */
		if (tz->pos + 1 < tz->len && s[tz->pos] == '-' &&
		    s[tz->pos + 1] == '-') {
			while (tz->pos < tz->len && s[tz->pos] != '\n')
				tz->pos++;
			continue;
		}
		break;
	}
	start_token(tz, t, tz->pos);
	if (tz->pos >= tz->len) {
		t->type = TK_END;
		t->end = TOK_END_EOF;
		return TOK_OK;
	}
	c = (unsigned char)s[tz->pos];
	if (c == '\n' || c == ';') {
		t->type = TK_END;
		t->end = c == ';' ? TOK_END_SEMI : TOK_END_NEWLINE;
		t->len = 1;
		tz->pos++;
		if (c == '\n') {
			tz->line++;
			tz->line_off = tz->pos;
		}
		return TOK_OK;
	}
	if (c == '\'') {
		rc = read_string(tz, t);
		return rc;
	}
	if ((c == 'x' || c == 'X') && tz->pos + 1 < tz->len &&
	    s[tz->pos + 1] == '\'')
		return read_hex(tz, t);
	if (c == '"') {
		t->len = 1;
		tz->errmsg = "unexpected '\"': strings are written in single "
			     "quotes";
		return TOK_ERROR;
	}
	if (!is_word_byte(c)) {
		t->len = 1;
		tz->errmsg = "unexpected control character";
		return TOK_ERROR;
	}
	for (p = tz->pos; p < tz->len && is_word_byte((unsigned char)s[p]); p++)
		;
	/* A word that reaches the end of a buffer with more to come may
	 * still grow only if the caller splits lines mid-word, which it
	 * never does: lines end with '\n'. */
	t->len = p - tz->pos;
	t->val = s + tz->pos;
	t->vlen = t->len;
	tz->pos = p;
	t->kw = tok_keyword(t->val, t->vlen);
	if (t->kw) {
		t->type = t->kw;
	} else if (t->vlen == 1 && t->val[0] == '*') {
		t->type = t->kw = TK_STAR;
	} else {
		size_t i;

		for (i = 0; i < t->vlen; i++)
			if (t->val[i] < '0' || t->val[i] > '9')
				break;
		t->type = i == t->vlen ? TK_INTEGER : TK_WORD;
	}
	return TOK_OK;
}
