DROP TABLE reply_epochs;
