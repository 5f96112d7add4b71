/*
 * lineedit.c: reading lines in the interactive shell.
 *
 * With libedit (configure defines HAVE_LIBEDIT) the shell gets line
 * editing, a history kept in ~/.mapkv_history (or $MAPKV_HISTORY) and
 * tab completion of keywords, dot-commands and tree names, through
 * libedit's readline-compatible interface. Without it, lines are read
 * from stdin as they come.
 */
#include <stdlib.h>
#include <string.h>

#include "shell.h"
#include "tokenize.h"

#ifdef HAVE_LIBEDIT
#include <ctype.h>
#include <editline/readline.h>

static struct shell *le_sh;
static char *le_history;

static const char *const dot_commands[] = {
	".bail", ".check", ".copy", ".dump", ".exit", ".help",
	".load", ".mode",  ".quit", ".read", ".stat", ".timer",
};

struct candidates {
	char **v;
	size_t n, cap;
};

static struct candidates cands;
static size_t cand_next;

static void cand_add(const char *s, int lower)
{
	char *c;
	size_t i;

	if (cands.n == cands.cap) {
		size_t cap = cands.cap ? cands.cap * 2 : 32;
		char **v = realloc(cands.v, cap * sizeof *v);

		if (!v)
			return;
		cands.v = v;
		cands.cap = cap;
	}
	if (!(c = strdup(s)))
		return;
	for (i = 0; lower && c[i]; i++)
		c[i] = (char)tolower((unsigned char)c[i]);
	cands.v[cands.n++] = c;
}

static void cand_clear(void)
{
	size_t i;

	for (i = 0; i < cands.n; i++)
		free(cands.v[i]);
	cands.n = 0;
	cand_next = 0;
}

struct tree_prefix {
	const char *text;
	size_t len;
};

static int add_tree(void *ctx, const char *name)
{
	struct tree_prefix *tp = ctx;

	/* a name with blanks or quotes would need quoting: not offered */
	if (strncmp(name, tp->text, tp->len) == 0 && !strpbrk(name, " \t';"))
		cand_add(name, 0);
	return 0;
}

/* Fill the candidates for the word @text (case-insensitive for
 * keywords, which come back in the case the user started with). */
static void gather(const char *text, int line_start)
{
	size_t len = strlen(text), i;
	int lower = len > 0 && islower((unsigned char)text[0]);
	struct tree_prefix tp = {text, len};
	mapkv_txn *txn = le_sh->txn;

	cand_clear();
	if (line_start && text[0] == '.') {
		for (i = 0; i < sizeof dot_commands / sizeof *dot_commands; i++)
			if (strncmp(dot_commands[i], text, len) == 0)
				cand_add(dot_commands[i], 0);
		return;
	}
	for (i = 0; i < tok_nkeywords; i++)
		if (strncasecmp(tok_keywords[i].name, text, len) == 0)
			cand_add(tok_keywords[i].name, lower);
	if (txn || mapkv_txn_begin(le_sh->env, MAPKV_RDONLY, &txn) == 0) {
		mapkv_dbi_list(txn, add_tree, &tp);
		if (txn != le_sh->txn)
			mapkv_txn_abort(txn);
	}
}

static char *generate(const char *text, int state)
{
	(void)text;
	(void)state;
	if (cand_next < cands.n)
		return strdup(cands.v[cand_next++]);
	return NULL;
}

static char **complete(const char *text, int start, int end)
{
	int i;

	(void)end;
	/* Arguments of dot-commands are file names: leave them to
	 * libedit's file name completion. */
	for (i = 0; i < start && isspace((unsigned char)rl_line_buffer[i]);)
		i++;
	if (rl_line_buffer[i] == '.' && i < start)
		return NULL;
	rl_attempted_completion_over = 1;
	gather(text, i == start);
	return rl_completion_matches(text, generate);
}

void le_init(struct shell *sh)
{
	const char *h = getenv("MAPKV_HISTORY"), *home = getenv("HOME");

	le_sh = sh;
	rl_readline_name = "mapkv";
	rl_attempted_completion_function = complete;
	if (h && *h) {
		le_history = strdup(h);
	} else if (home && *home) {
		size_t n = strlen(home) + sizeof "/.mapkv_history";

		if ((le_history = malloc(n)))
			snprintf(le_history, n, "%s/.mapkv_history", home);
	}
	stifle_history(1000);
	if (le_history)
		read_history(le_history);
}

char *le_readline(const char *prompt)
{
	return readline(prompt);
}

void le_add_history(const char *line)
{
	add_history(line);
}

void le_end(void)
{
	if (le_history) {
		write_history(le_history);
		free(le_history);
		le_history = NULL;
	}
	clear_history();
	cand_clear();
	free(cands.v);
	cands.v = NULL;
	cands.cap = 0;
}

#else /* !HAVE_LIBEDIT */

void le_init(struct shell *sh)
{
	(void)sh;
}

#ifdef _WIN32
/* MinGW has no getline: the same, on fgets (wincompat.h). */
ssize_t sh_w_getline(char **line, size_t *cap, FILE *f)
{
	size_t len = 0;

	if (*line == NULL || *cap < 128) {
		char *p = realloc(*line, 128);
		if (!p)
			return -1;
		*line = p;
		*cap = 128;
	}
	for (;;) {
		if (!fgets(*line + len, (int)(*cap - len), f))
			return len ? (ssize_t)len : -1;
		len += strlen(*line + len);
		if (len > 0 && (*line)[len - 1] == '\n')
			return (ssize_t)len;
		if (*cap - len < 2) {
			char *p = realloc(*line, *cap * 2);
			if (!p)
				return -1;
			*line = p;
			*cap *= 2;
		}
	}
}

/* open_memstream: a temporary file whose contents fclose copies into the
 * caller's buffer (wincompat.h). Few streams are open at once. */
static struct {
	FILE *f;
	char **buf;
	size_t *len;
} sh_w_mem[8];

FILE *sh_w_open_memstream(char **buf, size_t *len)
{
	for (int i = 0; i < 8; i++) {
		if (!sh_w_mem[i].f) {
			FILE *f = tmpfile();
			if (!f)
				return NULL;
			sh_w_mem[i].f = f;
			sh_w_mem[i].buf = buf;
			sh_w_mem[i].len = len;
			*buf = NULL;
			*len = 0;
			return f;
		}
	}
	return NULL;
}

#undef fclose
int sh_w_fclose(FILE *f)
{
	for (int i = 0; f && i < 8; i++) {
		if (sh_w_mem[i].f == f) {
			long n = ftell(f);
			char *b = n >= 0 ? malloc((size_t)n + 1) : NULL;
			int rc = b ? 0 : EOF;
			sh_w_mem[i].f = NULL;
			if (b) {
				rewind(f);
				n = (long)fread(b, 1, (size_t)n, f);
				b[n] = '\0';
				*sh_w_mem[i].buf = b;
				*sh_w_mem[i].len = (size_t)n;
			}
			return fclose(f) == 0 ? rc : EOF;
		}
	}
	return fclose(f);
}
#endif

char *le_readline(const char *prompt)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	fputs(prompt, stdout);
	fflush(stdout);
	n = getline(&line, &cap, stdin);
	if (n < 0) {
		free(line);
		return NULL;
	}
	if (n > 0 && line[n - 1] == '\n')
		line[n - 1] = '\0';
	return line;
}

void le_add_history(const char *line)
{
	(void)line;
}

void le_end(void)
{
}

#endif
