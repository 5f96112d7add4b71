/*
 * main.c: the mapkv program: the shell (interactive or batch) and the
 * sub-commands stat, check, dump, load and copy.
 *
 * Batch mode (statements as arguments, or stdin not a terminal) prints
 * nothing but results and errors, and stops with exit status 1 at the
 * first error unless -bail off is given (then the status is 1 if any
 * statement failed).
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shell.h"

static const char usage_text[] =
	"usage: mapkv [OPTIONS] FILE [STATEMENTS...]\n"
	"       mapkv stat FILE\n"
	"       mapkv check FILE\n"
	"       mapkv dump [-a] [-p] [-s TREE] [-f OUTPUT] FILE\n"
	"       mapkv load [-N] [-s TREE] [-f INPUT] FILE\n"
	"       mapkv copy [-c] SRC DST\n"
	"\n"
	"Opens the database FILE (created when missing) in a shell: reads\n"
	"statements from the terminal, from the arguments, or from stdin.\n"
	"Options: -bail on|off  stop at the first error (batch default: on)\n"
	"         -mode MODE    text, hex, json or csv\n"
	"         -readonly     open the database read-only\n"
	"         -safe         dot-commands may not read or write files\n"
	"         -version, -help\n"
	"Type .help in the shell for the language; man mapkv for more.\n";

static int usage(void)
{
	fputs(usage_text, stderr);
	return 2;
}

static void on_sigint(int sig)
{
	(void)sig;
	sh_interrupted = 1;
}

static int open_db(struct shell *sh, const char *path, unsigned flags)
{
	mapkv_options o;
	int rc;

	memset(&o, 0, sizeof o);
	o.flags = flags;
	sh->path = path;
	rc = mapkv_open(&sh->env, path, &o);
	if (rc) {
		int e = errno;

		if (rc == MAPKV_IO && e)
			fprintf(stderr, "mapkv: cannot open %s: %s (%s)\n",
				path, mapkv_strerror(rc), strerror(e));
		else
			fprintf(stderr, "mapkv: cannot open %s: %s\n", path,
				mapkv_strerror(rc));
		return -1;
	}
	return 0;
}

static void close_db(struct shell *sh)
{
	if (sh->txn) {
		mapkv_txn_abort(sh->txn);
		sh->txn = NULL;
	}
	mapkv_close(sh->env);
	sh->env = NULL;
	free(sh->tree);
	sh->tree = NULL;
}

static void count_lines(const char *s, size_t n, unsigned *line)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] == '\n')
			(*line)++;
}

/* Input arrives a line at a time; a statement may span lines only inside
 * a string, in which case the unfinished part waits for the next line. */
struct pending {
	char *buf;
	size_t len, cap;
	unsigned line; /* line number of buf[0] */
};

static int pending_add(struct pending *p, const char *s, size_t n)
{
	if (p->len + n + 1 > p->cap) {
		size_t cap = (p->len + n + 1) * 2;
		char *b = realloc(p->buf, cap);

		if (!b)
			return -1;
		p->buf = b;
		p->cap = cap;
	}
	memcpy(p->buf + p->len, s, n);
	p->len += n;
	return 0;
}

/* Run what is pending; keeps an unfinished statement. */
static int pending_run(struct shell *sh, struct pending *p, int at_eof)
{
	size_t consumed;
	int rc = sh_run(sh, p->buf, p->len, p->line, at_eof, &consumed);

	count_lines(p->buf, consumed, &p->line);
	memmove(p->buf, p->buf + consumed, p->len - consumed);
	p->len -= consumed;
	return rc;
}

/*
 * Ctrl-C stops the statement that runs (loops poll sh_interrupted) or, at
 * the prompt, drops the line being typed. The handler is installed without
 * SA_RESTART so that a read at the prompt returns; libedit passes the
 * signal on to it after restoring the terminal.
 */
static int interactive(struct shell *sh)
{
	struct pending p = {NULL, 0, 0, 1};
#ifdef _WIN32
	void (*old)(int) = signal(SIGINT, on_sigint);
#else
	struct sigaction sa, old;
#endif
	char prompt[64];
	char *line;

#ifndef _WIN32
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigint;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old);
#endif
	printf("mapkv %s on %s. Enter .help for help.\n", mapkv_version(),
	       sh->path);
	le_init(sh);
	while (!sh->quit) {
		if (p.len)
			snprintf(prompt, sizeof prompt, "   ...> ");
		else
			snprintf(prompt, sizeof prompt, "mapkv%s%.24s%s> ",
				 sh->tree ? ":" : "", sh->tree ? sh->tree : "",
				 sh->txn ? "*" : "");
		sh_interrupted = 0;
		line = le_readline(prompt);
		if (!line && sh_interrupted) {
			/* ^C at the prompt: forget the unfinished input */
			clearerr(stdin);
			putchar('\n');
			count_lines(p.buf, p.len, &p.line);
			p.len = 0;
			continue;
		}
		if (!line) {
			putchar('\n');
			if (p.len)
				pending_run(sh, &p, 1);
			break;
		}
		if (line[strspn(line, " \t")])
			le_add_history(line);
		if (pending_add(&p, line, strlen(line)) ||
		    pending_add(&p, "\n", 1)) {
			free(line);
			fprintf(stderr, "mapkv: out of memory\n");
			break;
		}
		free(line);
		sh_interrupted = 0;
		pending_run(sh, &p, 0);
		fflush(sh->out);
	}
	le_end();
	free(p.buf);
#ifdef _WIN32
	signal(SIGINT, old);
#else
	sigaction(SIGINT, &old, NULL);
#endif
	return 0;
}

static int batch_stdin(struct shell *sh)
{
	struct pending p = {NULL, 0, 0, 1};
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int status = 0;

	while (!sh->quit && (n = getline(&line, &cap, stdin)) >= 0) {
		if (pending_add(&p, line, (size_t)n)) {
			fprintf(stderr, "mapkv: out of memory\n");
			status = -1;
			break;
		}
		/* Run once a line is complete; the last line may lack its
		 * newline and then runs at the end of the input. */
		if (n > 0 && line[n - 1] == '\n' &&
		    pending_run(sh, &p, 0) == SH_ERROR) {
			status = -1;
			if (sh->bail)
				break;
		}
	}
	if (status == 0 || !sh->bail)
		if (!sh->quit && p.len && pending_run(sh, &p, 1) == SH_ERROR)
			status = -1;
	free(line);
	free(p.buf);
	return status;
}

static int batch_args(struct shell *sh, char **args, int n)
{
	size_t consumed;
	int i, status = 0;

	for (i = 0; i < n && !sh->quit; i++) {
		if (sh_run(sh, args[i], strlen(args[i]), 1, 1, &consumed) ==
		    SH_ERROR) {
			status = -1;
			if (sh->bail)
				break;
		}
	}
	return status;
}

static int shell_main(int argc, char **argv)
{
	struct shell sh;
	unsigned flags = 0;
	int i, status, bail = 1;

	memset(&sh, 0, sizeof sh);
	sh.out = stdout;
	for (i = 1; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
		const char *o = argv[i] + (argv[i][1] == '-');

		if (strcmp(o, "-bail") == 0 && i + 1 < argc &&
		    (strcmp(argv[i + 1], "on") == 0 ||
		     strcmp(argv[i + 1], "off") == 0)) {
			bail = strcmp(argv[++i], "on") == 0;
		} else if (strcmp(o, "-mode") == 0 && i + 1 < argc) {
			static const char *modes[] = {"text", "hex", "json",
						      "csv"};
			int m;

			for (m = 0; m < 4; m++)
				if (strcmp(argv[i + 1], modes[m]) == 0)
					break;
			if (m == 4)
				return usage();
			sh.mode = (enum out_mode)m;
			i++;
		} else if (strcmp(o, "-readonly") == 0) {
			flags |= MAPKV_RDONLY;
		} else if (strcmp(o, "-safe") == 0) {
			sh.safe = 1;
		} else if (strcmp(o, "-version") == 0) {
#ifdef HAVE_LIBEDIT
			printf("mapkv %s, line editing by libedit\n",
			       mapkv_version());
#else
			printf("mapkv %s, no line editing\n", mapkv_version());
#endif
			return 0;
		} else if (strcmp(o, "-help") == 0 || strcmp(o, "-h") == 0) {
			fputs(usage_text, stdout);
			return 0;
		} else {
			return usage();
		}
	}
	if (i >= argc)
		return usage();
	if (open_db(&sh, argv[i], flags))
		return 1;
	i++;
	sh.progress = isatty(2);
	if (i < argc) {
		sh.bail = bail;
		status = batch_args(&sh, argv + i, argc - i);
	} else if (isatty(0)) {
		sh.interactive = 1;
		status = interactive(&sh);
	} else {
		sh.bail = bail;
		status = batch_stdin(&sh);
	}
	if (sh.txn) {
		sh.line = 0;
		if (status && sh.bail)
			sh_error(&sh, "stopped inside a transaction: it was "
				      "rolled back");
		else
			sh_error(&sh, "the input ended inside a transaction: "
				      "it was rolled back");
	}
	close_db(&sh);
	fflush(stdout);
	if (ferror(stdout)) {
		fprintf(stderr, "mapkv: cannot write the output\n");
		return 1;
	}
	if (sh.interactive)
		return 0;
	return status || sh.errors ? 1 : 0;
}

/* ---------------------------------------------------------------- tools */

/* Sub-command options: the ones in @spec ("ac" or "s:"), then the
 * operands. Returns the index of the first operand, or -1. */
struct subopts {
	int a, c, p, N;
	const char *s, *f;
};

static int parse_subopts(int argc, char **argv, const char *spec,
			 struct subopts *o)
{
	int i;

	memset(o, 0, sizeof *o);
	for (i = 2; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
		const char *p = strchr(spec, argv[i][1]);

		if (!p || argv[i][2])
			return -1;
		if (p[1] == ':') {
			if (i + 1 >= argc)
				return -1;
			if (*p == 's')
				o->s = argv[++i];
			else
				o->f = argv[++i];
			continue;
		}
		switch (*p) {
		case 'a':
			o->a = 1;
			break;
		case 'c':
			o->c = 1;
			break;
		case 'p':
			o->p = 1;
			break;
		case 'N':
			o->N = 1;
			break;
		}
	}
	return i;
}

static int tool_main(int argc, char **argv)
{
	const char *cmd = argv[1];
	struct shell sh;
	struct subopts o;
	unsigned flags = MAPKV_RDONLY | MAPKV_NOCREATE;
	int i, rc = -1, nfiles = 1;
	FILE *f = NULL;

	memset(&sh, 0, sizeof sh);
	sh.out = stdout;
	sh.progress = isatty(2);
	if (strcmp(cmd, "dump") == 0) {
		i = parse_subopts(argc, argv, "aps:f:", &o);
	} else if (strcmp(cmd, "load") == 0) {
		i = parse_subopts(argc, argv, "Ns:f:", &o);
		flags = 0; /* created when missing */
	} else if (strcmp(cmd, "copy") == 0) {
		i = parse_subopts(argc, argv, "c", &o);
		nfiles = 2;
	} else {
		i = parse_subopts(argc, argv, "", &o);
	}
	if (i < 0 || argc - i != nfiles || (o.a && o.s))
		return usage();
	if (open_db(&sh, argv[i], flags))
		return 1;
	if (strcmp(cmd, "stat") == 0) {
		rc = sh_stat(&sh);
	} else if (strcmp(cmd, "check") == 0) {
		rc = sh_check(&sh);
	} else if (strcmp(cmd, "copy") == 0) {
		rc = sh_copy(&sh, argv[i + 1], o.c);
	} else if (strcmp(cmd, "dump") == 0) {
		struct dump_opts d = {o.a, o.p, o.s, 1};

		f = o.f ? fopen(o.f, "w") : stdout;
		if (!f) {
			fprintf(stderr, "mapkv: cannot create %s: %s\n", o.f,
				strerror(errno));
		} else {
			rc = sh_dump(&sh, f, &d);
			if (f != stdout && fclose(f) && rc == 0) {
				fprintf(stderr, "mapkv: cannot write %s: %s\n",
					o.f, strerror(errno));
				rc = -1;
			}
		}
	} else {
		f = o.f ? fopen(o.f, "r") : stdin;
		if (!f) {
			fprintf(stderr, "mapkv: cannot open %s: %s\n", o.f,
				strerror(errno));
		} else {
			rc = sh_load(&sh, f, o.f ? o.f : "stdin", o.s, o.N);
			if (f != stdin)
				fclose(f);
		}
	}
	close_db(&sh);
	fflush(stdout);
	if (ferror(stdout))
		rc = -1;
	return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	static const char *tools[] = {"stat", "check", "dump", "load", "copy"};
	size_t t;

	/* A first argument naming a tool is the tool; a database file with
	 * such a name is opened as ./NAME. */
	for (t = 0; argc > 1 && t < sizeof tools / sizeof *tools; t++)
		if (strcmp(argv[1], tools[t]) == 0)
			return tool_main(argc, argv);
	return shell_main(argc, argv);
}
