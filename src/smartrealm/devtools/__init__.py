"""What only demos and tests need: the `smartrealm demo` runner and the scripted user that
signs in through the AS's pages like a browser. Above every serving layer: nothing that
serves requests imports it."""
