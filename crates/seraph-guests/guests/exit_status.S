/* EXIT_STATUS: PRINT "exit-status guest\n", then EXIT with status 42. */
#include "seraph_abi.h"
#include "common.inc"

    GUEST_ENTRY
    PRINT_TEXT "exit-status guest\n"
    EXIT    42
    HALT_FOREVER
