"""The staff console: aiohttp routes under /staff on the website's port (see routes.register_staff_console)."""
