from twhin_data.runners.dataflow.flex import flex_main  # Flex Template launcher: --command=STAGE + its flags

raise SystemExit(flex_main())
