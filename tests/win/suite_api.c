/* tests/check_api.c as a function of the Windows test program. */
#define main wintest_api_main
#include "../check_api.c"
