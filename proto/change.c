/* placeholder: implemented with the ld_ library */
