from llama_data.cli import main

main()
