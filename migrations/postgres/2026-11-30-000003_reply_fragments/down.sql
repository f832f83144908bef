DROP TABLE reply_fragments;
