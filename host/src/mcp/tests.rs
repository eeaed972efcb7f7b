// unit tests: see below
