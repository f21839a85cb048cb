"""Summary tables: a SELECT per .sql file, built, checked and swapped in by one factory."""
