/* tests/check_dbi.c as a function of the Windows test program. */
#define main wintest_dbi_main
#include "../check_dbi.c"
