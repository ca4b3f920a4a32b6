"""Trading venues: the protocol of each venue, shared by the data readers, the live feeds, the
emulator and the gateways."""
