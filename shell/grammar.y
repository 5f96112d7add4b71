/*
 * grammar.y: the statements of the mapkv shell, for the lemon parser
 * generator (https://sqlite.org/src/doc/trunk/doc/lemon.html).
 *
 * The parser sees one statement at a time: its tokens, then one TK_END
 * (made from ';', a newline or the end of the input). The actions only
 * fill ctx->st; nothing runs until the whole statement has parsed, which
 * is what guarantees that a statement with a syntax error changes nothing.
 *
 * Keywords are reserved here: the driver (parse.c) retries a keyword that
 * the grammar rejects as a plain TK_WORD, so `PUT from to` works without
 * a %fallback (which would make every keyword look acceptable wherever a
 * value is, and spoil the "expected ..." part of syntax errors).
 *
 * The generated grammar.c and grammar.h are built, never committed.
 */

%name sh_parser
%token_prefix TK_
%token_type {const struct token *}
%extra_argument {struct parse_ctx *ctx}
%start_symbol input
%type lit {const struct token *}

%include {
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tokenize.h"
#include "shell.h"

/* Record the first error an action finds; the statement will not run. */
static void sem_error(struct parse_ctx *ctx, const struct token *t,
		      const char *msg)
{
	if (!ctx->sem_tok) {
		ctx->sem_tok = t;
		ctx->sem_msg = msg;
	}
}
}

%syntax_error {
	(void)yymajor;
	(void)yyminor;
	ctx->syntax_error = 1;
}
%parse_failure {
	ctx->syntax_error = 1;
}
%stack_overflow {
	ctx->syntax_error = 1;
}
/* Tokens belong to the driver; nothing to free. (Naming ctx and the value
 * here also keeps -Wextra quiet about the template's yy_destructor.) */
%token_destructor {
	(void)ctx;
	(void)$$;
}

/* Token order fixes the TK_* numbers: END first, then the keywords, then
 * the literals. */
%token END.
%token PUT GET DEL EXISTS SCAN COUNT BEGIN COMMIT ROLLBACK.
%token USE MAIN CREATE DROP TREE TREES.
%token FROM TO PREFIX LIMIT REVERSE STAR.
%token STRING HEX WORD INTEGER.

input ::= END.
input ::= stmt END.

stmt ::= PUT lit(K) lit(V).	{ ctx->st.kind = ST_PUT; ctx->st.a = K; ctx->st.b = V; }
stmt ::= GET lit(K).		{ ctx->st.kind = ST_GET; ctx->st.a = K; }
stmt ::= EXISTS lit(K).		{ ctx->st.kind = ST_EXISTS; ctx->st.a = K; }
stmt ::= DEL lit(K).		{ ctx->st.kind = ST_DEL; ctx->st.a = K; }
stmt ::= DEL STAR.		{ ctx->st.kind = ST_DEL_RANGE; }
stmt ::= DEL clauses.		{ ctx->st.kind = ST_DEL_RANGE; }
stmt ::= SCAN.			{ ctx->st.kind = ST_SCAN; }
stmt ::= SCAN clauses.		{ ctx->st.kind = ST_SCAN; }
stmt ::= COUNT.			{ ctx->st.kind = ST_COUNT; }
stmt ::= COUNT clauses.		{ ctx->st.kind = ST_COUNT; }
stmt ::= BEGIN.			{ ctx->st.kind = ST_BEGIN; }
stmt ::= COMMIT.		{ ctx->st.kind = ST_COMMIT; }
stmt ::= ROLLBACK.		{ ctx->st.kind = ST_ROLLBACK; }
stmt ::= USE.			{ ctx->st.kind = ST_USE; }
stmt ::= USE MAIN.		{ ctx->st.kind = ST_USE; }
stmt ::= USE lit(N).		{ ctx->st.kind = ST_USE; ctx->st.a = N; }
stmt ::= CREATE TREE lit(N).	{ ctx->st.kind = ST_CREATE_TREE; ctx->st.a = N; }
stmt ::= DROP TREE lit(N).	{ ctx->st.kind = ST_DROP_TREE; ctx->st.a = N; }
stmt ::= TREES.			{ ctx->st.kind = ST_TREES; }

/* Range clauses, in any order, each at most once. */
clauses ::= clause.
clauses ::= clauses clause.

clause ::= FROM(T) lit(K). {
	if (ctx->st.from)
		sem_error(ctx, T, "FROM is given twice");
	ctx->st.from = K;
}
clause ::= TO(T) lit(K). {
	if (ctx->st.to)
		sem_error(ctx, T, "TO is given twice");
	ctx->st.to = K;
}
clause ::= PREFIX(T) lit(K). {
	if (ctx->st.prefix)
		sem_error(ctx, T, "PREFIX is given twice");
	ctx->st.prefix = K;
}
clause ::= LIMIT(T) INTEGER(N). {
	uint64_t v = 0;
	size_t i;

	if (ctx->st.has_limit)
		sem_error(ctx, T, "LIMIT is given twice");
	for (i = 0; i < N->vlen; i++) {
		unsigned d = (unsigned)(N->val[i] - '0');

		if (v > (UINT64_MAX - d) / 10) {
			sem_error(ctx, N, "LIMIT is too large");
			break;
		}
		v = v * 10 + d;
	}
	ctx->st.has_limit = 1;
	ctx->st.limit = v;
}
clause ::= REVERSE(T). {
	if (ctx->st.reverse)
		sem_error(ctx, T, "REVERSE is given twice");
	ctx->st.reverse = 1;
}

lit(A) ::= STRING(T).	{ A = T; }
lit(A) ::= HEX(T).	{ A = T; }
lit(A) ::= WORD(T).	{ A = T; }
lit(A) ::= INTEGER(T).	{ A = T; }
