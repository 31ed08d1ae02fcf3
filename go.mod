module tbsim

go 1.26.0

require github.com/twmb/murmur3 v1.1.8
