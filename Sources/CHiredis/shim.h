#ifndef KINDRED_CHIREDIS_SHIM_H
#define KINDRED_CHIREDIS_SHIM_H

#include <hiredis/hiredis.h>

#endif
