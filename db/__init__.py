"""PostgreSQL access for haowatch: migrations, the embedded server, and every SQL statement."""
