from selectsearch.cli import run

run()
