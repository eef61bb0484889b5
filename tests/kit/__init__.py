"""The test kit: what the tests need to build app folders, start servers and talk to them."""
