"""HTTP routes, one module per resource. Routes parse, call one domain function, convert."""
