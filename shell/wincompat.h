/*
 * wincompat.h: what the shell uses from POSIX that MinGW lacks, for the
 * Windows build only (included by shell.h under _WIN32). getline and
 * open_memstream are implemented in lineedit.c: open_memstream writes to
 * a temporary file whose contents fclose (redefined here, for the shell's
 * files only) copies into the caller's buffer.
 */
#ifndef MAPKV_SHELL_WINCOMPAT_H
#define MAPKV_SHELL_WINCOMPAT_H

#include <stdio.h>
#include <sys/types.h>

ssize_t sh_w_getline(char **line, size_t *cap, FILE *f);
FILE *sh_w_open_memstream(char **buf, size_t *len);
int sh_w_fclose(FILE *f);

#define getline sh_w_getline
#define open_memstream sh_w_open_memstream
#define fclose sh_w_fclose

#endif
