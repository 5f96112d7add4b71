/*
 * tokenize.h: the hand-written tokenizer of the mapkv shell language.
 *
 * The language is line oriented: a statement ends with ';', a newline or
 * the end of the input, and each of those becomes a TK_END token. Tokens:
 *
 *   keywords   PUT GET ... (any case); the token keeps its keyword code in
 *              `kw`, so the parser driver can retry it as a plain word
 *              where a keyword cannot stand (`PUT from to` stores "to"
 *              under the key "from").
 *   'string'   any bytes, '' stands for one quote; may span lines.
 *   x'hex'     an even number of hex digits (X'' too).
 *   words      a run of bytes other than blanks, quotes and ';'. A word
 *              of digits only is an integer, a lone '*' is TK_STAR.
 *   -- ...     a comment to the end of the line (where a token may start).
 *
 * Token codes (TK_*) come from the lemon-generated grammar.h, so that the
 * tokenizer and the grammar cannot disagree about them.
 */
#ifndef MAPKV_SHELL_TOKENIZE_H
#define MAPKV_SHELL_TOKENIZE_H

#include <stddef.h>

#include "grammar.h"

/* What ended a statement (for TK_END tokens). */
enum tok_end { TOK_END_SEMI = 1, TOK_END_NEWLINE, TOK_END_EOF };

struct token {
	int type;        /* TK_* code given to the parser */
	int kw;          /* keyword code this word spells, or 0 */
	int end;         /* TK_END only: an enum tok_end */
	size_t off, len; /* source text: src[off, off + len) */
	unsigned line;   /* line of the first byte, counted from 1 */
	size_t line_off; /* offset in src of the start of that line */
	const char *val; /* the bytes the token stands for */
	size_t vlen;
	char *buf; /* owned copy behind val (strings and hex), or NULL */
};

enum tok_status {
	TOK_OK = 0,
	TOK_INCOMPLETE, /* a string is open at the end of the buffer */
	TOK_ERROR       /* bad token; tz->errmsg says why, *t locates it */
};

struct tokenizer {
	const char *src;
	size_t len;
	size_t pos;
	unsigned line;   /* current line number */
	size_t line_off; /* where the current line starts */
	int at_eof;      /* src holds the rest of the input: no more to come */
	const char *errmsg;
};

/* A keyword of the language, for the tokenizer, completion and messages. */
struct tok_keyword {
	const char *name; /* upper case */
	int code;
};
extern const struct tok_keyword tok_keywords[];
extern const size_t tok_nkeywords;

/* Start tokenizing src[0, len), whose first line is line number @line. */
void tok_init(struct tokenizer *tz, const char *src, size_t len, unsigned line,
	      int at_eof);

/*
 * Read the next token into *t (blanks and comments are skipped). At the end
 * of the buffer a TK_END with end == TOK_END_EOF is returned (again on every
 * later call). On TOK_INCOMPLETE nothing was consumed: call again on a
 * buffer with more input. The caller frees t->buf with tok_free().
 * Returns TOK_OK, TOK_INCOMPLETE or TOK_ERROR.
 */
int tok_next(struct tokenizer *tz, struct token *t);

/* Free what tok_next() allocated for *t. */
void tok_free(struct token *t);

/* The keyword code of the word w[0, n) (any case), or 0. */
int tok_keyword(const char *w, size_t n);

#endif /* MAPKV_SHELL_TOKENIZE_H */
