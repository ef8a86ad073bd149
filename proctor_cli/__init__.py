"""`proctor`: a command line client of the Proctor REST API (standard library only: it runs anywhere Python does,
without the server's dependencies)."""
