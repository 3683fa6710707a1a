"""The PostgreSQL store (optional extra ``postgres``): one journal for many processes on many hosts."""
