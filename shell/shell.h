/*
 * shell.h: what the modules of the mapkv shell share.
 *
 *   tokenize.c  input -> tokens
 *   grammar.y   tokens -> struct stmt (lemon)
 *   parse.c     drives both over a buffer: statements, dot-commands,
 *               syntax errors with a caret
 *   exec.c      runs a statement (transactions, trees, ranges)
 *   output.c    prints keys and values in the output modes
 *   dot.c       the dot-commands
 *   dump.c      dump and load in the mdb_dump text format
 *   tools.c     stat, check, copy
 *   lineedit.c  line editing, history and completion (libedit)
 *   main.c      arguments, sub-commands, the input loop
 *
 * The shell uses the public API of include/mapkv.h only.
 */
#ifndef MAPKV_SHELL_H
#define MAPKV_SHELL_H

#include <stdint.h>
#include <stdio.h>

#include "mapkv.h"

#ifdef _WIN32
#include "wincompat.h" /* getline, open_memstream */
#endif

struct token;

enum stmt_kind {
	ST_EMPTY = 0,
	ST_PUT,
	ST_GET,
	ST_EXISTS,
	ST_DEL,
	ST_DEL_RANGE,
	ST_SCAN,
	ST_COUNT,
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_USE,
	ST_CREATE_TREE,
	ST_DROP_TREE,
	ST_TREES
};

/* A parsed statement. Token pointers point into the driver's token array
 * and stay valid while the statement runs. */
struct stmt {
	enum stmt_kind kind;
	const struct token *a; /* key, or tree name */
	const struct token *b; /* value */
	/* range clauses of SCAN, COUNT and DEL */
	const struct token *from, *to, *prefix;
	int has_limit;
	uint64_t limit;
	int reverse;
};

/* The parser's extra argument: the statement being built and what went
 * wrong. */
struct parse_ctx {
	struct stmt st;
	int syntax_error;
	const struct token *sem_tok; /* first semantic error, or NULL */
	const char *sem_msg;
};

enum out_mode { MODE_TEXT = 0, MODE_HEX, MODE_JSON, MODE_CSV };

struct shell {
	mapkv_env *env;
	const char *path;
	mapkv_txn *txn; /* the transaction BEGIN opened, or NULL */
	char *tree;     /* current tree; NULL is the main tree */
	enum out_mode mode;
	int timer;
	int bail;          /* stop at the first error (batch mode) */
	int interactive;   /* reading from a terminal */
	int progress;      /* stderr is a terminal: show progress there */
	int quit;          /* .quit was given */
	int safe;          /* -safe: no dot-command may name a file */
	int read_depth;    /* .read files nested */
	unsigned errors;   /* errors reported so far */
	unsigned line;     /* line of the statement running, for messages */
	const char *input; /* file being read by .read, for messages */
	FILE *out;         /* results go here */
};

/* The result of running some input. */
enum { SH_OK = 0, SH_ERROR = -1, SH_NEED_MORE = 1 };

/* ---- parse.c */

/*
 * Run the statements and dot-commands in src[0, len), whose first line is
 * @line in the input. With @at_eof zero, a string still open at the end
 * returns SH_NEED_MORE and *consumed says where the unfinished statement
 * starts (everything before it has run). Returns SH_OK, SH_ERROR (when
 * sh->bail is set the first error stops the run) or SH_NEED_MORE.
 */
int sh_run(struct shell *sh, const char *src, size_t len, unsigned line,
	   int at_eof, size_t *consumed);

/* ---- exec.c */

/* Run a statement; errors are reported. Returns 0 or -1. */
int sh_exec(struct shell *sh, const struct stmt *st);

/* Open the current tree in @txn; reports an error when it is missing. */
int sh_open_tree(struct shell *sh, mapkv_txn *txn, mapkv_dbi *dbi);

/* Begin the transaction a command works in: the open BEGIN transaction
 * if any (*own = 0), else a new one (*own = 1). Reports errors. */
int sh_txn(struct shell *sh, int write, mapkv_txn **txn, int *own);

/* Finish what sh_txn() began: commit when @own, @write and @ok, abort
 * when @own otherwise. Returns 0 or -1 (a failed commit is reported). */
int sh_txn_end(struct shell *sh, mapkv_txn *txn, int own, int write, int ok);

/* ---- output.c */

/* Print an error, prefixed with the line in batch mode; counts it. */
void sh_error(struct shell *sh, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Print an error about a mapkv call: "what: strerror(rc)". */
void sh_error_rc(struct shell *sh, int rc, const char *what);

/* Bytes in each mode. */
void out_text(FILE *f, const void *p, size_t n);
void out_hex(FILE *f, const void *p, size_t n);
void out_csv(FILE *f, const void *p, size_t n);
/* A JSON member "name": "..." (or "name_hex": "..." for bytes that are
 * not UTF-8). */
void out_json_member(FILE *f, const char *name, const void *p, size_t n);
int utf8_valid(const unsigned char *p, size_t n);

/* One value alone (GET), a key/value pair (SCAN), a tree name (TREES),
 * a number with a JSON name (COUNT, DEL), a yes/no (EXISTS). */
void out_value(struct shell *sh, const mapkv_val *key, const mapkv_val *val);
void out_pair(struct shell *sh, const mapkv_val *key, const mapkv_val *val);
void out_name(struct shell *sh, const char *name);
void out_number(struct shell *sh, const char *name, uint64_t n);
void out_exists(struct shell *sh, const mapkv_val *key, int yes);

/* Progress on stderr for long operations (only when sh->progress). */
struct progress {
	int on;
	double start, last;
	const char *what;
};
void progress_start(struct progress *p, const struct shell *sh,
		    const char *what);
void progress_tick(struct progress *p, uint64_t n);
void progress_end(struct progress *p);
double sh_now(void);

/* Set by SIGINT while a statement runs in the interactive shell. */
extern volatile int sh_interrupted;

/* ---- dot.c */

/* Run a dot-command; toks[0] is the command word, toks[n - 1] its END. */
int sh_dot(struct shell *sh, struct token *toks, size_t n);

/* ---- dump.c */

struct dump_opts {
	int all;          /* -a: every tree */
	int print;        /* -p: format=print */
	const char *tree; /* -s NAME; NULL: see below */
	int main_tree;    /* no -s: dump the main tree (else sh->tree) */
};

/* Dump to @f. Returns 0 or -1 (reported). */
int sh_dump(struct shell *sh, FILE *f, const struct dump_opts *o);

/* Load dump text from @f (named @fname in messages) into @tree (NULL: the
 * tree the header names, else the current tree). @nooverwrite keeps
 * existing keys. Returns 0 or -1 (reported). */
int sh_load(struct shell *sh, FILE *f, const char *fname, const char *tree,
	    int nooverwrite);

/* ---- tools.c */

int sh_stat(struct shell *sh);
/* Returns 0 when clean, 1 when problems were found, -1 on error. */
int sh_check(struct shell *sh);
int sh_copy(struct shell *sh, const char *dst, int compact);

/* ---- lineedit.c */

/* Start line editing on the terminal (loads the history). */
void le_init(struct shell *sh);
/* A line without its newline (malloc'd), or NULL at the end of input. */
char *le_readline(const char *prompt);
void le_add_history(const char *line);
void le_end(void);

#endif /* MAPKV_SHELL_H */
