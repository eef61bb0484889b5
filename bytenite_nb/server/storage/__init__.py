"""What ByteNite Local keeps: the SQLite store (`store`, its `schema` and `records`), job
listing (`listing`), the Developer API's pushed folders (`dev_store`) and the user cache
(`user_cache`). Never imports HTTP or the service layer."""
