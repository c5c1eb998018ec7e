#ifndef KINDRED_CMARIADB_SHIM_H
#define KINDRED_CMARIADB_SHIM_H

#include <mariadb/mysql.h>

#endif
