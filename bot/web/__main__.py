"""`python -m bot.web`: serve the website on WEB_PORT."""

from bot.web.server import main

main()
