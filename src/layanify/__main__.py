from layanify.cli.main import app

app()
