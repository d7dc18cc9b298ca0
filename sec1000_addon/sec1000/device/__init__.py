"""The only code that talks to the controller: the link, its health, and packet sequences."""
