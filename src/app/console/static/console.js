// faxgate console: small progressive enhancements; every page works without this file.
"use strict";
