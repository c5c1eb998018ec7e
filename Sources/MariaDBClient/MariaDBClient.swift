// MariaDBClient: one connection to MySQL/MariaDB over libmariadb.
// (Filled in by the storage work.)
import CMariaDB
